"""The operator console and the tenant admin portal, server-rendered under `/console`.

One more client of the same services the API routers call, with the same `Database` sessions
under row-level security and the same permissions (`guard`): nothing here reads a table the API
could not, and every action is audited as the same action through the API.

Pages are Jinja2 templates; htmx (2.0.11 from the npm package `htmx.org`, 0BSD, vendored in
`static/`) adds polling and in-page errors where a browser runs JavaScript, and every page that
only shows data reads the same without it.
"""
