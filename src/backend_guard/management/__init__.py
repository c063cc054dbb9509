"""Django management commands of the ``backend_guard`` app (``INSTALLED_APPS``: ``BackendGuardConfig``)."""
