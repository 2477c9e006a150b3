"""Pure domain types and rules: no grpc, aiohttp or sqlalchemy imports here."""
