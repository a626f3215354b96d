from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('models', '0014_waitlist_queue')]

    initial = False

    operations = [
        ops.CreateModel(
            name='NoticeTally',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('notice', fields.ForeignKeyField('models.Notice', source_field='notice_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('unit_id', fields.IntField(null=True)),
                ('delivered', fields.IntField(default=0)),
                ('read', fields.IntField(default=0)),
                ('acked', fields.IntField(default=0)),
                ('pushes', fields.JSONField(default=dict, description='push status (or pending) to a count', encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'notice_tally', 'app': 'models', 'unique_together': (('notice_id', 'unit_id'),), 'pk_attr': 'id', 'table_description': 'What the inbox rows of an archived notice counted, per unit (null: recipients without one),'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='AuditEntry',
            name='address',
            field=fields.CharField(null=True, description='the client address of the request that made it (null: a job)', max_length=45),
        ),
        ops.AddField(
            model_name='Member',
            name='erased_at',
            field=fields.DatetimeField(null=True, description='personal fields erased on request (PIPL)', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Notice',
            name='archived_at',
            field=fields.DatetimeField(null=True, description='its inbox rows were folded into notice_tally rows', auto_now=False, auto_now_add=False),
        ),
    ]
