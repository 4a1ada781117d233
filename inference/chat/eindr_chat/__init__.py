"""Eindr chat server: Bloom (transformers) behind the TGI text-generation API."""
