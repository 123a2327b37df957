"""Diarization: clustering of chunk embeddings, reconstruction of one timeline, the live
stream, named voices and presets, and the Diarizer that runs them as stages."""
