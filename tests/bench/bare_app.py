"""The reference for the API benchmark: a bare Litestar route that returns a constant."""

from litestar import Litestar, get


@get("/constant")
async def constant() -> dict[str, str]:
    return {"status": "ok"}


app = Litestar(route_handlers=[constant], debug=False)
