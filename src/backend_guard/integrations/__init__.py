"""Framework integrations (FastAPI/Starlette, Flask, Django): thin handlers over the sans-IO core."""
