from tests.e2e.portal_stack import chromium, stack  # noqa: F401 - the browser tests' fixtures
