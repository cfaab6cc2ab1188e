"""gunicorn settings for production: `gunicorn config.wsgi -c deploy/gunicorn.conf.py`."""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("WEB_THREADS", 4))
worker_class = "gthread"
# Large zip uploads and report rendering can take a while.
timeout = 120
graceful_timeout = 30
accesslog = "-"
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
