"""ASGI entry point for uvicorn and other servers: `uvicorn api.asgi:app`."""

from api.app import create_app

#: Without Redis (the embedded default) this process also runs the periodic jobs.
app = create_app(periodic_jobs=True)
