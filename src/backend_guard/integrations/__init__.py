"""Framework integrations (FastAPI/Starlette, Flask, Django): thin handlers over the sans-IO core.

``_adapter_<framework>.py`` holds what route decorators, request views and cookies know of one framework (one
:class:`~backend_guard._adapter.FrameworkAdapter` each, listed in ``_adapter.ADAPTERS``).
"""
