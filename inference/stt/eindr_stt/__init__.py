"""Eindr speech-to-text server (Whisper via faster-whisper, OpenAI audio API)."""
