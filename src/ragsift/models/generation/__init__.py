"""Text generation in the model layer: backends (transformers, llama.cpp, an OpenAI-compatible
server), prompts and answer extraction; the RAG chain and the synthetic-query job use them."""
