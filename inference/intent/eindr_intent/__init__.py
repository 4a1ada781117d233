"""Eindr intent server: MiniLM embeddings (TEI / OpenAI shapes) and intent classification."""
