"""Facts about the model's input that every module shares."""

INPUT_SIZE = 28  # MNIST images are 28x28; the model takes exactly this.
DIGIT_BOX = 20  # MNIST fits each digit in a 20x20 box inside the 28x28 frame.
NUM_CLASSES = 10
NOT_A_DIGIT = NUM_CLASSES  # the label of "not a digit": a user's correction, a generated non-digit
PIXEL_MAX = 255  # model inputs are uint8-valued: 0 is background, 255 is full ink.

# The app's drawing canvas: its side in pixels (10x MNIST's 28, so a mouse can draw comfortably), its pen's
# default width and the range its pen slider offers. Training renders pen strokes with the same pen (training.render).
CANVAS_SIZE = 280
PEN_WIDTH = 18
PEN_WIDTHS = (4, 40)
