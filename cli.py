from mgedb.cli import app

app()
