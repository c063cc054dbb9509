"""``manage.py guard``: the operator verbs (:mod:`backend_guard.operate`) on the app's own parts."""
