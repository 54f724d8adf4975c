"""The Streamlit page: layout only; behaviour lives in :mod:`langchain_persistent_memory.ui.logic`.

Run with ``lpm ui`` (or ``streamlit run`` on this file). The store comes from
``$LPM_DATABASE_URL`` and ``$LPM_EMBEDDINGS``, the same settings the CLI reads, because
search needs the embedding model the store was built with.
"""

from __future__ import annotations

import os

import streamlit as st

from langchain_persistent_memory.cli.config import (
    DATABASE_ENV,
    EMBEDDINGS_ENV,
    USER_ERRORS,
    describe,
    open_store,
    stored_model_name,
)
from langchain_persistent_memory.models import Memory
from langchain_persistent_memory.store import MemoryStore
from langchain_persistent_memory.ui.logic import (
    apply_edit,
    category_counts,
    memories_frame,
    memories_over_time,
    memory_label,
    summary,
    timeline_rows,
)

_TIME = "YYYY-MM-DD HH:mm"


@st.cache_resource(show_spinner=False)
def _store(url: str | None, embeddings: str | None) -> MemoryStore:
    return open_store(url, embeddings)


def _flash(message: str) -> None:
    """Show ``message`` after the rerun that follows a change."""
    st.session_state["flash"] = message


def _sidebar(store: MemoryStore) -> tuple[str | None, bool]:
    st.sidebar.header("Store")
    st.sidebar.caption(f"Database: `{store.stats()['database']}`")
    st.sidebar.caption(f"Embeddings: `{stored_model_name(store) or store.model_name}`")
    users = store.users()
    if not users:
        return None, False
    user = st.sidebar.selectbox("User", users, key="user")
    show_old = st.sidebar.checkbox("Show superseded memories", key="show_old")
    return user, show_old


def _memories_tab(memories: list[Memory]) -> None:
    frame = memories_frame(memories)
    st.dataframe(frame, hide_index=True, width="stretch", column_config={
        "importance": st.column_config.ProgressColumn("importance", min_value=0.0,
                                                      max_value=1.0, format="%.2f"),
        "valid_from": st.column_config.DatetimeColumn("valid from", format=_TIME),
        "valid_to": st.column_config.DatetimeColumn("valid to", format=_TIME),
        "created_at": st.column_config.DatetimeColumn("created", format=_TIME),
        "updated_at": st.column_config.DatetimeColumn("updated", format=_TIME),
    })


def _search_tab(store: MemoryStore, user: str, show_old: bool) -> None:
    query = st.text_input("Search memories", key="query",
                          placeholder="e.g. what does the user drink?")
    k = st.slider("Results", 1, 20, 5, key="k")
    if not query.strip():
        return
    hits = store.search(query, user_id=user, k=k, include_superseded=show_old)
    if not hits:
        st.info("No matching memories.")
    for memory, score in hits:
        st.markdown(f"**{score:.3f}** · {memory.content}  \n"
                    f":gray[{memory.category or 'no category'} · importance "
                    f"{memory.importance:.2f} · {memory.id}]")


def _details_tab(store: MemoryStore, memories: list[Memory]) -> None:
    by_id = {m.id: m for m in memories}
    # The last edit picks the memory to show; a deleted one, or another user's, is replaced.
    wanted = st.session_state.pop("next_memory", st.session_state.get("memory"))
    st.session_state["memory"] = wanted if wanted in by_id else next(iter(by_id))
    memory_id = st.selectbox("Memory", list(by_id), key="memory",
                             format_func=lambda i: memory_label(by_id[i]))
    memory = by_id[memory_id]
    left, right = st.columns(2)
    with left:
        st.subheader("Memory")
        st.markdown(f"> {memory.content}")
        st.markdown(
            f"- **category**: {memory.category or '—'}\n"
            f"- **importance**: {memory.importance:.2f}\n"
            f"- **valid**: {memory.valid_from:%Y-%m-%d %H:%M} → "
            f"{f'{memory.valid_to:%Y-%m-%d %H:%M}' if memory.valid_to else 'now'}\n"
            f"- **created** {memory.created_at:%Y-%m-%d %H:%M}, "
            f"**updated** {memory.updated_at:%Y-%m-%d %H:%M}\n"
            f"- **id**: `{memory.id}`")
        st.subheader("History")
        for row in timeline_rows(store.history(memory.id, user_id=memory.user_id)):
            change = f"“{row['before']}” → “{row['after']}”" if row["before"] and row["after"] \
                else f"“{row['after'] or row['before']}”"
            st.markdown(f"- `{row['when']:%Y-%m-%d %H:%M}` **{row['event']}** {change}")
    with right:
        _edit_form(store, memory)


def _edit_form(store: MemoryStore, memory: Memory) -> None:
    st.subheader("Edit")
    with st.form(f"edit-{memory.id}"):
        content = st.text_area("Content", memory.content)
        category = st.text_input("Category", memory.category or "")
        importance = st.slider("Importance", 0.0, 1.0, float(memory.importance), 0.05)
        supersede = st.checkbox("The fact changed: keep the old text as history "
                                "(supersede) instead of correcting it")
        if st.form_submit_button("Save changes"):
            try:
                saved = apply_edit(store, memory, content=content, category=category,
                                   importance=importance, supersede=supersede)
            except USER_ERRORS as exc:
                st.error(describe(exc))
            else:
                st.session_state["next_memory"] = saved.id
                _flash("Saved.")
                st.rerun()
    with st.form(f"delete-{memory.id}"):
        sure = st.checkbox("Yes, delete this memory")
        if st.form_submit_button("Delete memory"):
            if not sure:
                st.warning("Tick the box to confirm.")
            else:
                store.delete(memory.id, user_id=memory.user_id, reason="deleted in the web UI")
                st.session_state["next_memory"] = None
                _flash("Deleted.")
                st.rerun()


def _charts_tab(memories: list[Memory]) -> None:
    left, right = st.columns(2)
    with left:
        st.subheader("By category")
        st.bar_chart(category_counts(memories), x="category", y="memories")
    with right:
        st.subheader("Added over time")
        per_day = memories_over_time(memories)
        per_day["day"] = per_day["day"].dt.strftime("%Y-%m-%d")  # one bar per day, not a sliver
        st.bar_chart(per_day, x="day", y="added", color="category")


def main() -> None:
    st.set_page_config(page_title="Memories · langchain-persistent-memory", layout="wide")
    st.title("Memories")
    try:
        store = _store(os.environ.get(DATABASE_ENV), os.environ.get(EMBEDDINGS_ENV))
    except USER_ERRORS as exc:
        st.error(f"Cannot open the store: {describe(exc)}")
        st.stop()
    if "flash" in st.session_state:  # a toast: the layout (and the open tab) stays put
        st.toast(st.session_state.pop("flash"), icon=":material/check_circle:", duration="long")
    user, show_old = _sidebar(store)
    if user is None:
        st.info("No memories yet. Add some with `lpm add` or `lpm chat`.")
        return
    memories = store.list(user, include_superseded=show_old)
    counts = summary(memories)
    st.caption(f"User **{user}**")
    cols = st.columns(3)
    cols[0].metric("Current memories", counts["current"])
    cols[1].metric("Superseded", counts["superseded"])
    cols[2].metric("Categories", counts["categories"])
    tabs = st.tabs(["Memories", "Search", "Details & history", "Charts"], key="tab")
    with tabs[0]:
        _memories_tab(memories)
    with tabs[1]:
        _search_tab(store, user, show_old)
    if not memories:
        return
    with tabs[2]:
        _details_tab(store, memories)
    with tabs[3]:
        _charts_tab(memories)


main()
