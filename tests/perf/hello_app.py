"""The ceiling reference of run_serving.py: the smallest Flask app, served like the registry (same gunicorn
settings). Whatever the registry does per request beyond this costs it throughput relative to this."""
from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return "Hello, World!"
