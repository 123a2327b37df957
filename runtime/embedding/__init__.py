"""Speaker embeddings: the fbank front-end and the Embedder that runs CAM++ on masked chunks."""
