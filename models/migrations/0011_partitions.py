from tortoise import migrations
from tortoise.migrations import operations as ops
from models.zoning import ProposalStatus
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0010_audit')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PartitionProposal',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('status', fields.CharEnumField(default=ProposalStatus.PENDING, description='PENDING: pending\nAPPLIED: applied', enum_type=ProposalStatus, max_length=16)),
                ('seed', fields.BigIntField()),
                ('zone_count', fields.IntField()),
                ('assignment', fields.JSONField(description='unit id to zone index 0..zone_count-1', encoder=JSON_DUMPS, decoder=loads)),
                ('zone_ids', fields.JSONField(description='per zone index the existing zone it takes over, null for a new zone', encoder=JSON_DUMPS, decoder=loads)),
                ('basis', fields.JSONField(description='the partition it was computed from, unit id to zone id (stale when it differs)', encoder=JSON_DUMPS, decoder=loads)),
                ('measures', fields.JSONField(description='measures and objective of today, a random partition and the proposal', encoder=JSON_DUMPS, decoder=loads)),
                ('steps', fields.BigIntField(default=0)),
                ('elapsed_ms', fields.IntField(default=0)),
                ('out_of_time', fields.BooleanField(default=False)),
                ('created_by', fields.ForeignKeyField('models.Member', source_field='created_by_id', null=True, description='null: proposed from the command line', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('from_quarter', fields.CharField(null=True, description='applied from, e.g. 2027Q1', max_length=6)),
                ('starts_at', fields.DatetimeField(null=True, description='the first instant of from_quarter', auto_now=False, auto_now_add=False)),
                ('duty_orders', fields.JSONField(null=True, description='zone id to its unit ids in the new duty order, set when applied', encoder=JSON_DUMPS, decoder=loads)),
                ('applied_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('applied_by', fields.ForeignKeyField('models.Member', source_field='applied_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('moved_at', fields.DatetimeField(null=True, description='when its units moved to their new zones', auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'partition_proposal', 'app': 'models', 'indexes': [Index(fields=['status', 'moved_at'])], 'pk_attr': 'id', 'table_description': 'A partition the solver proposed (services/partition.py), and its application.'},
            bases=['Model'],
        ),
    ]
