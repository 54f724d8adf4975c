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
from langchain_persistent_memory.models import Memory, Provenance
from langchain_persistent_memory.store import MemoryStore
from langchain_persistent_memory.ui.logic import (
    COLUMN_WIDTHS,
    apply_edit,
    category_counts,
    entities_frame,
    entity_memories,
    hit_markdown,
    lineage,
    md_escape,
    memories_frame,
    memories_over_time,
    memory_label,
    memory_markdown,
    summary,
    timeline_rows,
)

_TIME = "YYYY-MM-DD HH:mm"
_DETAILS = "Details & history"


@st.cache_resource(show_spinner=False)
def _store(url: str | None, embeddings: str | None) -> MemoryStore:
    return open_store(url, embeddings)


def _flash(message: str) -> None:
    """Show ``message`` after the rerun that follows a change."""
    st.session_state["flash"] = message


def _sidebar(store: MemoryStore) -> tuple[str | None, bool]:
    st.sidebar.header("Store")
    st.sidebar.caption(f"Database: {md_escape(str(store.stats()['database']))}")
    st.sidebar.caption(f"Embeddings: {md_escape(stored_model_name(store) or store.model_name)}")
    users = store.users()
    if not users:
        return None, False
    user = st.sidebar.selectbox("User", users, key="user")
    show_old = st.sidebar.checkbox("Show superseded memories", key="show_old")
    return user, show_old


def _memories_tab(memories: list[Memory]) -> None:
    frame = memories_frame(memories)
    w = COLUMN_WIDTHS
    st.dataframe(frame, hide_index=True, width="stretch", placeholder="", column_config={
        "content": st.column_config.TextColumn("content", width=w["content"]),
        "category": st.column_config.TextColumn("category", width=w["category"]),
        "status": st.column_config.TextColumn("status", width=w["status"]),
        "id": st.column_config.TextColumn("id", width=w["id"]),
        "importance": st.column_config.ProgressColumn("importance", min_value=0.0,
                                                      max_value=1.0, format="%.2f",
                                                      width=w["importance"]),
        "valid_from": st.column_config.DatetimeColumn("valid from", format=_TIME,
                                                      width=w["valid_from"]),
        "valid_to": st.column_config.DatetimeColumn("valid to", format=_TIME,
                                                    width=w["valid_to"]),
        "created_at": st.column_config.DatetimeColumn("created", format=_TIME,
                                                      width=w["created_at"]),
        "updated_at": st.column_config.DatetimeColumn("updated", format=_TIME,
                                                      width=w["updated_at"]),
    })


def _open_details(memory_id: str) -> None:
    """Button callback: show this memory in the details tab (runs before the rerun)."""
    st.session_state["next_memory"] = memory_id
    st.session_state["tab"] = _DETAILS


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
        text, link = st.columns([12, 1], vertical_alignment="center")
        text.markdown(hit_markdown(memory, score))
        link.button("Details", key=f"hit-{memory.id}", on_click=_open_details,
                    args=(memory.id,), help="Open this memory with its history")


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
        st.markdown(f"> {md_escape(memory.content)}")
        st.markdown(memory_markdown(memory))
        st.subheader("History")
        for row in timeline_rows(store.history(memory.id, user_id=memory.user_id)):
            before, after = md_escape(row["before"]), md_escape(row["after"])
            change = f"“{before}” → “{after}”" if before and after else f"“{after or before}”"
            origin = f" — from {md_escape(row['origin'])}" if row["origin"] else ""
            st.markdown(f"- `{row['when']:%Y-%m-%d %H:%M}` **{row['event']}** {change}{origin}")
        for relation, other in lineage(memory, memories):
            st.button(f"{relation}: {md_escape(memory_label(other))}",
                      key=f"{relation}-{other.id}",
                      on_click=_open_details, args=(other.id,), type="tertiary",
                      icon=":material/history:")
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
                st.error(md_escape(describe(exc)))  # may quote what was typed
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
                store.delete(memory.id, user_id=memory.user_id, reason="deleted in the web UI",
                             provenance=Provenance(origin="ui"))
                st.session_state["next_memory"] = None
                _flash("Deleted.")
                st.rerun()


def _entities_tab(store: MemoryStore, user: str, show_old: bool,
                  memories: list[Memory]) -> None:
    rows = store.entities(user, include_superseded=show_old)
    if not rows:
        st.info("No entities yet: names, people and titles in memories show here.")
        return
    st.dataframe(entities_frame(rows), hide_index=True, width="stretch")
    by_key = {r.key: r for r in rows}
    key = st.selectbox("Entity", list(by_key), key="entity",
                       format_func=lambda k: f"{by_key[k].name} ({len(by_key[k].memory_ids)})")
    for memory in entity_memories(by_key[key], memories):
        text, link = st.columns([12, 1], vertical_alignment="center")
        text.markdown(f"- {md_escape(memory_label(memory))}")
        link.button("Details", key=f"entity-{memory.id}", on_click=_open_details,
                    args=(memory.id,), help="Open this memory with its history")


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
        st.error(f"Cannot open the store: {md_escape(describe(exc))}")
        st.stop()
    if "flash" in st.session_state:  # a toast: the layout (and the open tab) stays put
        st.toast(st.session_state.pop("flash"), icon=":material/check_circle:", duration="long")
    user, show_old = _sidebar(store)
    if user is None:
        st.info("No memories yet. Add some with `lpm add` or `lpm chat`.")
        return
    everything = store.list(user, include_superseded=True)
    memories = everything if show_old else [m for m in everything if m.is_current]
    counts = summary(everything)  # the same numbers whether or not superseded ones show
    st.caption(f"User **{md_escape(user)}**")
    cols = st.columns(3)
    cols[0].metric("Current memories", counts["current"])
    cols[1].metric("Superseded", counts["superseded"])
    cols[2].metric("Categories", counts["categories"])
    # Stateful tabs (on_change="rerun"), so a search hit can switch to its details.
    tabs = st.tabs(["Memories", "Search", _DETAILS, "Entities", "Charts"], key="tab",
                   on_change="rerun")
    with tabs[0]:
        _memories_tab(memories)
    with tabs[1]:
        _search_tab(store, user, show_old)
    if not memories:
        return
    with tabs[2]:
        _details_tab(store, everything)  # a link may lead to a superseded memory
    with tabs[3]:
        _entities_tab(store, user, show_old, memories)
    with tabs[4]:
        _charts_tab(memories)


main()
