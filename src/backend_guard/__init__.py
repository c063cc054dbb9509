"""backend_guard."""
