from tenantry.cli.main import app

app(prog_name="tenantry")
