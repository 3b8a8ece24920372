"""The RAG chain: answer metrics, GainRAG gain labels, and (to come) the pipeline."""
