"""Tortoise models, one module per domain; `MODEL_MODULES` is what Tortoise loads."""

MODEL_MODULES = ["models.org", "models.notices", "models.activities", "models.supervision",
                 "models.funds", "models.ledger", "models.files", "models.governance",
                 "models.audit", "models.records", "models.practices",
                 "models.zoning"]
APP_LABEL = "models"
MIGRATIONS_MODULE = "models.migrations"
