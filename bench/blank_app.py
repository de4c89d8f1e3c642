"""The baseline for bench/app_speed.py: a minimal Streamlit app with an uploader and a metric."""

import numpy as np
import streamlit as st
from PIL import Image

upload = st.file_uploader("Upload", key="upload")
if upload is not None:
    st.metric("Prediction", int(np.asarray(Image.open(upload)).mean()) % 10)
