"""A WSGI application for gunicorn (tests/test_real_servers.py): every path
answers 2 MB. gunicorn's sync workers serve one request per connection and
close it, so a pipelined second request is left unread."""

BODY = b"g" * 2_000_000


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(BODY)))])
    return [BODY]
