from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0009_evaluation')]

    initial = False

    operations = [
        ops.CreateModel(
            name='AuditEntry',
            fields=[
                ('id', fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('actor', fields.ForeignKeyField('models.Member', source_field='actor_id', null=True, description='who did it (null: zonehub itself, a job)', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('action', fields.CharField(description='e.g. refund.requested, member.role_changed', max_length=64)),
                ('target_type', fields.CharField(max_length=32)),
                ('target_id', fields.BigIntField(null=True)),
                ('zone_id', fields.IntField(null=True, description='the zone it concerns, for scoping')),
                ('detail', fields.JSONField(default=dict, description='what changed: amounts, before and after', encoder=JSON_DUMPS, decoder=loads)),
            ],
            options={'table': 'audit_entry', 'app': 'models', 'indexes': [Index(fields=['target_type', 'target_id']), Index(fields=['actor_id', 'id']), Index(fields=['zone_id', 'id'])], 'pk_attr': 'id'},
            bases=['Model'],
        ),
    ]
