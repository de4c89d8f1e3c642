"""The sidebar's admin parts: the admin gate, the active model, its versions and the stored corrections."""

from __future__ import annotations

import hmac
import os

import pandas as pd
import streamlit as st

from model.artifacts import ModelFileError
from model.card import HEADLINE, is_percent
from model.constants import NOT_A_DIGIT
from model.gate import Gate
from model.registry import SHIPPED_VERSION, ModelVersion, Registry
from services.admin_guard import TRUST_FORWARDED_FOR, TokenGuard, client_address
from services.corrections import CorrectionStore, label_name
from services.database import STORE_ERRORS, store_problem
from services.versions import metric_rows, summary
from ui import state
from ui.resources import AdminSetting
from ui.results import zoomed

RECENT_CORRECTIONS = 24
NO_SESSION = "(no session)"  # rows stored before sessions were recorded, or imported


def admin_gate(setting: AdminSetting, guard: TokenGuard) -> bool:
    """Whether this session may retrain, switch models and delete data. A setting that could not be read
    keeps everything locked; wrong tokens are slowed and locked out per client (`guard`)."""
    token = setting.token
    if setting.problem:
        st.error(f"Admin tools are locked: {setting.problem}.")
        return False
    if token is None:
        st.caption("Open local tool: no ADMIN_TOKEN is set, so anyone who can open this page can retrain, "
                   "switch models and delete corrections.")
        return True
    st.text_input("Admin token", type="password", key="admin_token", on_change=_try_token, args=(token, guard),
                  help="Needed to retrain, switch models and delete data; reading digits and sending "
                       "corrections need nothing.")
    # The token a try accepted, checked again on every run: a changed ADMIN_TOKEN locks the session again.
    accepted = state.accepted_token()
    unlocked = accepted is not None and hmac.compare_digest(accepted.encode(), token.encode())
    refused = state.token_refusal()
    if refused:
        st.error(refused)
    elif not unlocked:
        st.caption("Locked: enter the admin token to retrain, switch models or delete data.")
    return unlocked


def _try_token(token: str, guard: TokenGuard) -> None:
    """A token was entered (once per change, not once per rerun): the guard slows and locks out wrong ones."""
    entered = st.session_state.get("admin_token") or ""
    state.accept_token(None)
    if not entered:
        state.refuse_token(None)
        return
    address = client_address(st.context.ip_address, st.context.headers,
                             os.environ.get(TRUST_FORWARDED_FOR) == "1")
    attempt = guard.attempt(state.session_id(), address, lambda: hmac.compare_digest(entered.encode(), token.encode()))
    state.accept_token(entered if attempt.unlocked else None)
    state.refuse_token(attempt.message)


# The versions table's columns: the headline figures but the error count, which repeats the accuracy (four
# columns do not fit the sidebar; Compare and `python -m services.versions` show them all).
SIDEBAR = tuple(figure for figure in HEADLINE if figure.metric != "errors")


def model_summary(active: ModelVersion, gate: Gate | None) -> None:
    card = active.card
    done = state.take_done()
    if done:  # where the user is looking, and as a toast in case the sidebar is scrolled
        st.success(done)
        st.toast(done, icon=":material/check:")
    st.subheader("Active model")
    accuracy = f"{card.test_accuracy:.2%}" if card.test_accuracy is not None else "not measured"
    origin = f", fine-tuned from {card.fine_tuned_from}" if card.fine_tuned_from else ""
    st.markdown(
        f"**{active.version}** · {card.architecture} CNN  \n"
        f"Reader (which digit): trained {_when(card)} on {card.trained_on}{origin}. "
        f"MNIST test accuracy: **{accuracy}**  \n"
        + (_gate_line(gate) if gate else "No gate: the reader's own confidence decides what is not a digit")
    )


def _when(card) -> str:
    return (card.created or "?")[:16].replace("T", " ")


def _gate_line(gate: Gate) -> str:
    """The gate as a user can tell it apart from the reader: when, on what, and what it refuses."""
    card = gate.card
    generated = (card.config or {}).get("non_digits")
    refused = ((card.calibration or {}).get("refused") or {}).get("non_digits")
    return (f"Gate (is it a digit at all?): trained {_when(card)} on {card.trained_on}"
            + (f" + {generated:,} generated non-digits" if generated else "")
            + f". Says \"not a digit\" below a digit-likeness of **{gate.threshold:.0%}**"
            + (f"; refused {refused:.0%} of its held-out non-digits" if refused is not None else "")
            + f" (version {card.version})")


def corrections_panel(store: CorrectionStore | None, admin: bool) -> int:
    """Counts, recent samples, delete and export; returns how many samples are stored (0 while the store does
    not answer: reading goes on without it)."""
    if store is None:  # ui.resources said why
        return 0
    try:
        return _corrections_panel(store, admin)
    except STORE_ERRORS as error:
        st.warning(f"The corrections store does not answer ({store_problem(error)}). Reading digits goes on; "
                   "corrections cannot be stored or shown until it is back.")
        return 0


def _corrections_panel(store: CorrectionStore, admin: bool) -> int:
    counts = store.counts()
    total = sum(counts["corrected"]) + sum(counts["confirmed"])
    panel = st.expander(f"Corrections ({total} stored)", key=state.CORRECTIONS_OPEN, on_change="rerun")
    with panel:
        if not panel.open:  # drawn only when opened: every element on the page slows each stroke's answer
            return total
        if not total:
            st.caption("None yet. After a prediction, press Right or pick the right digit: samples are stored "
                       "here and used when you retrain with corrections.")
            return total
        st.vega_lite_chart(corrections_chart(counts), width="stretch")
        recent = store.recent(RECENT_CORRECTIONS)
        st.image([zoomed(c.model_input, 2) for c in recent], width=56, clamp=True,
                 caption=[f"#{c.id}: {label_name(c.label)}" + ("" if c.confirmed else f" (read {c.predicted})")
                          for c in recent])
        chosen = st.selectbox("A bad one", [c.id for c in recent], key="correction_choice",
                              format_func=lambda i: f"#{i}")
        # Every admin action checks `admin` itself too: a disabled button is only a hint to the browser.
        if st.button("Delete it", key="correction_delete", disabled=not admin) and admin:
            store.delete(chosen)
            st.rerun()
        st.download_button("Export all as .npz", data=store.export_npz if admin else b"", file_name="corrections.npz",
                           mime="application/octet-stream", key="corrections_export", disabled=not admin)
        if admin:  # who sent what is for admins only, though it holds no personal data
            sessions_panel(store)
    return total


def corrections_chart(counts: dict[str, list[int]]) -> dict:
    """Stored samples per true label, confirmed and corrected stacked, as horizontal bars: in the narrow sidebar,
    upright bars under rotated labels ("not a digit") and a legend left no room for the bars (issue 33)."""
    values = [{"label": label_name(label), "kind": kind, "samples": per_label[label]}
              for kind, per_label in counts.items() for label in range(NOT_A_DIGIT + 1)]
    return {
        "data": {"values": values},
        "mark": "bar",
        "height": {"step": 14},  # a band per label, whatever the sidebar's width
        "encoding": {
            "y": {"field": "label", "type": "nominal", "sort": None, "title": None, "axis": {"labelOverlap": False}},
            "x": {"field": "samples", "type": "quantitative", "title": "samples", "axis": {"tickMinStep": 1}},
            "color": {"field": "kind", "type": "nominal", "title": None,
                      "legend": {"orient": "bottom", "direction": "vertical"}},
            "tooltip": [{"field": "label"}, {"field": "kind"}, {"field": "samples"}],
        },
    }


def sessions_panel(store: CorrectionStore) -> None:
    """Who sent what: each app session's samples and time span, so that a bad batch goes in one click."""
    sessions = store.sessions()
    st.caption("Sent by app session (a random id per browser session; no personal data):")
    st.dataframe(pd.DataFrame([{"session": (s.session or NO_SESSION)[:8], "samples": s.count, "corrected": s.corrected,
                                "first": s.first[:19].replace("T", " "), "last": s.last[:19].replace("T", " ")}
                               for s in sessions]), hide_index=True, key="correction_sessions")
    by_id = {s.session or NO_SESSION: s for s in sessions}  # chosen by id, never by position: the list moves
    chosen = st.selectbox("A bad batch", list(by_id), key="correction_session_choice",
                          format_func=lambda i: f"{i[:8]}: {by_id[i].count} sample(s), "
                                                f"last {by_id[i].last[:16].replace('T', ' ')}")
    if st.button("Delete everything it sent", key="correction_session_delete") and chosen in by_id:
        store.delete_session(None if chosen == NO_SESSION else chosen)
        st.rerun()


def shown(value, metric: str) -> str:
    """A figure in a table cell: a percentage for rates, as it is otherwise."""
    if value is None:
        return "—"  # not "-": tables render markdown, and that is a bullet
    return f"{value:.2%}" if is_percent(metric) else str(value)


@st.dialog("Compare model versions", width="large")
def compare_versions(registry: Registry, names: list[str]) -> None:
    versions = [registry.get(name) for name in names]
    rows = metric_rows(versions)  # labelled and shown as the sidebar shows them: "MNIST test accuracy", "—"
    st.dataframe(pd.DataFrame([[shown(v, metric) for v in values] for _, metric, values in rows],
                              index=[label for label, _, _ in rows], columns=names), width="stretch")
    st.caption("MNIST test confusion matrices: rows are the true digit, columns what the model read.")
    for column, name in zip(st.columns(len(names)), names):
        matrix = registry.confusion(name)
        column.markdown(f"**{name}**")
        if matrix is None:
            column.caption("No confusion matrix recorded.")
        else:
            column.dataframe(pd.DataFrame(matrix).style.background_gradient(cmap="Blues", axis=None), height=400)


def versions_panel(registry: Registry, active: ModelVersion, admin: bool) -> None:
    panel = st.expander("Model versions", key=state.VERSIONS_OPEN, on_change="rerun")
    with panel:
        if not panel.open:  # as the corrections: drawn only when opened
            return
        versions = registry.versions()
        rows = [summary(v, active.version) for v in versions]
        table = pd.DataFrame({figure.short: [shown(r[figure.key], figure.metric) for r in rows] for figure in SIDEBAR},
                             index=[("● " if r["active"] else "") + r["version"] for r in rows])
        # narrow columns, and long version names broken anywhere, so that every column fits the sidebar
        st.html("<style>.st-key-versions_table table { font-size: 0.8rem; } .st-key-versions_table th, "
                ".st-key-versions_table td { word-break: break-all; padding: 0.25rem; }</style>")
        st.container(key="versions_table").table(table)
        st.caption("; ".join(f"{figure.short}: {figure.label}" for figure in SIDEBAR if figure.short != figure.label)
                   + ". ● the active model. *Compare* shows every figure.")
        names = [v.version for v in versions]
        chosen = st.selectbox("Version", names, key="version_choice",
                              index=names.index(active.version) if active.version in names else 0)
        activate_column, delete_column = st.columns(2)
        try:
            if activate_column.button("Activate", key="version_activate",
                                      disabled=not admin or chosen == active.version) and admin:
                registry.activate(chosen)
                state.report_done(f"Activated {chosen}: it reads every drawing now.")
                st.rerun()
            if delete_column.button("Delete", key="version_delete",
                                    disabled=not admin or chosen in (active.version, SHIPPED_VERSION)) and admin:
                registry.delete(chosen)
                state.report_done(f"Deleted {chosen}.")
                st.rerun()
            if st.button("Roll back to the previous model", key="version_rollback", disabled=not admin) and admin:
                registry.rollback()
                state.report_done(f"Rolled back to {registry.active_version()}: it reads every drawing now.")
                st.rerun()
        except (ValueError, ModelFileError) as error:  # e.g. nothing to roll back to, or deleted meanwhile
            st.warning(str(error))
        compared = st.multiselect("Compare", names, default=names[:2], max_selections=3, key="version_compare")
        if st.button("Compare side by side", key="version_compare_open", disabled=len(compared) < 2):
            compare_versions(registry, compared)
