"""Pipelines' extension points: the step kinds (``registry``) and the listeners of finished runs (``listeners``)."""
