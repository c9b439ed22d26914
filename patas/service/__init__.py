"""The HTTP service (`patas serve`): FastAPI + uvicorn over the PATAS warehouse, API keys with roles."""
