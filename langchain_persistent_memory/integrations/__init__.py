"""Adapters that plug one ``MemoryStore`` (and one ``MemoryManager``) into other frameworks.

Each module imports its framework lazily, so installing only the extras you use is enough:
``retriever`` and ``tools`` need langchain-core (always installed), ``classic_memory`` needs
``[classic]``, ``middleware`` and ``langgraph_store`` need ``[agents]``, ``llamaindex`` needs
``[llamaindex]``. Import from the submodule, or from the package root, which resolves names on
first use.
"""
