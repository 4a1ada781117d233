"""Eindr text-to-speech server: Piper, espeak-ng and Coqui behind the OpenAI speech API."""
