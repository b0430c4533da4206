"""The staff admin at /admin: starlette-admin pages over the library's tables, signed in with
the API's staff accounts, every change made by the same services the API calls."""
