"""The OCI distribution (pull) API over aiohttp.web, serving what distributions publish."""
