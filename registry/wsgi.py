"""Entry point for gunicorn: ``gunicorn -c deploy/gunicorn.conf.py registry.wsgi:app``."""
from . import bootstrap, create_app

app = create_app()
bootstrap.run(app)
