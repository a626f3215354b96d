from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0008_governance')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Evaluation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('year', fields.IntField(unique=True)),
                ('rubric', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('result', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('computed_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('computed_by', fields.ForeignKeyField('models.Member', source_field='computed_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'evaluation', 'app': 'models', 'pk_attr': 'id', 'table_description': "A year's computed scores and ranks, with the rubric they were computed under. Kept per"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Rubric',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('year', fields.IntField(unique=True)),
                ('weights', fields.JSONField(encoder=JSON_DUMPS, decoder=loads)),
                ('updated_by', fields.ForeignKeyField('models.Member', source_field='updated_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('updated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'evaluation_rubric', 'app': 'models', 'pk_attr': 'id', 'table_description': "The committee's weights for a year's evaluation (年终考核). A year without its own takes"},
            bases=['Model'],
        ),
    ]
