"""The web UI (extra ``ui``): browse, search, edit and chart a store's memories.

Start it with ``lpm ui``; it reads ``LPM_DATABASE_URL`` and ``LPM_EMBEDDINGS`` like the CLI.
:mod:`.logic` holds the testable behaviour, :mod:`.app` the Streamlit page.
"""
