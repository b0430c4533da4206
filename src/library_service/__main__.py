from library_service.cli import app

app()
