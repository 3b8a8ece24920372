"""The RAG chain: retrieve, rerank, select and generate (pipeline); answer metrics."""
