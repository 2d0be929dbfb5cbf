"""Thin Prefect flows over :mod:`novelcomic.pipeline`. Remove the decorators and the code still
works: every task body is one library call. Tasks take the project *path* (a string) so that
they can run in other threads, processes or workers that share the project directory."""
