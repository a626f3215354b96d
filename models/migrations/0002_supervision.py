from tortoise import migrations
from tortoise.migrations import operations as ops
from models.supervision import AssignmentState, Step
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0001_initial')]

    initial = False

    operations = [
        ops.CreateModel(
            name='SupervisionItem',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('title', fields.CharField(max_length=128)),
                ('detail', fields.TextField(default='', unique=False)),
                ('attachments', fields.JSONField(default=list, description='references: name, url, size, content_type', encoder=JSON_DUMPS, decoder=loads)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ladder', fields.JSONField(description='hours of each step, the defaults merged with the overrides', encoder=JSON_DUMPS, decoder=loads)),
                ('target', fields.JSONField(default=dict, description='the unit_ids and zone_ids as asked', encoder=JSON_DUMPS, decoder=loads)),
                ('created_by', fields.ForeignKeyField('models.Member', source_field='created_by_id', db_constraint=True, to_field='id', related_name='supervision_items', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'supervision_item', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A task the committee assigned to units, with a due time and its escalation ladder.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Assignment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('item', fields.ForeignKeyField('models.SupervisionItem', source_field='item_id', db_constraint=True, to_field='id', related_name='assignments', on_delete=OnDelete.CASCADE)),
                ('unit', fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name='supervision_assignments', on_delete=OnDelete.RESTRICT)),
                ('zone_id', fields.IntField(null=True, description='the zone of the unit when the item was assigned')),
                ('state', fields.CharEnumField(default=AssignmentState.OPEN, description='OPEN: open\nIN_PROGRESS: in_progress\nSUBMITTED: submitted\nACCEPTED: accepted\nRETURNED: returned', enum_type=AssignmentState, max_length=16)),
                ('assigned_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('submitted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('accepted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('on_time', fields.BooleanField(null=True, description='set on acceptance: submitted by the due time')),
                ('accept_s', fields.IntField(null=True, description='set on acceptance: seconds from assignment')),
                ('overdue_at', fields.DatetimeField(null=True, description='when the overdue step fired', auto_now=False, auto_now_add=False)),
                ('escalation_level', fields.SmallIntField(default=0, description='steps fired, 0 to 4')),
                ('next_step', fields.CharEnumField(null=True, description='REMIND: remind\nOVERDUE: overdue\nLIAISON: liaison\nCOMMITTEE: committee', enum_type=Step, max_length=16)),
                ('next_step_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('last_urged_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('urge_count', fields.IntField(default=0)),
            ],
            options={'table': 'supervision_assignment', 'app': 'models', 'unique_together': (('item', 'unit'),), 'indexes': [Index(fields=['next_step_at']), Index(fields=['unit_id', 'item_id']), Index(fields=['zone_id', 'item_id'])], 'pk_attr': 'id', 'table_description': 'One unit answering one item, with its state and the ladder step due next (null when stopped).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='EscalationEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('assignment', fields.ForeignKeyField('models.Assignment', source_field='assignment_id', db_constraint=True, to_field='id', related_name='escalations', on_delete=OnDelete.CASCADE)),
                ('step', fields.CharEnumField(description='REMIND: remind\nOVERDUE: overdue\nLIAISON: liaison\nCOMMITTEE: committee', enum_type=Step, max_length=16)),
                ('due_at', fields.DatetimeField(description='when the step was scheduled', auto_now=False, auto_now_add=False)),
                ('fired_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('claim', fields.CharField(description='the scan batch that fired it', max_length=16)),
            ],
            options={'table': 'supervision_escalation', 'app': 'models', 'unique_together': (('assignment', 'step'),), 'pk_attr': 'id', 'table_description': 'A ladder step that fired, once per assignment and step (the worker that inserts it fires).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ProgressReport',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('assignment', fields.ForeignKeyField('models.Assignment', source_field='assignment_id', db_constraint=True, to_field='id', related_name='reports', on_delete=OnDelete.CASCADE)),
                ('by', fields.ForeignKeyField('models.Member', source_field='by_id', db_constraint=True, to_field='id', related_name='supervision_reports', on_delete=OnDelete.RESTRICT)),
                ('note', fields.TextField(default='', unique=False)),
                ('attachments', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('done', fields.BooleanField(default=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'supervision_report', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A unit admin reporting progress, or submitting when done.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Review',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('assignment', fields.ForeignKeyField('models.Assignment', source_field='assignment_id', db_constraint=True, to_field='id', related_name='reviews', on_delete=OnDelete.CASCADE)),
                ('by', fields.ForeignKeyField('models.Member', source_field='by_id', db_constraint=True, to_field='id', related_name='supervision_reviews', on_delete=OnDelete.RESTRICT)),
                ('accept', fields.BooleanField()),
                ('comment', fields.TextField(default='', unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'supervision_review', 'app': 'models', 'pk_attr': 'id', 'table_description': 'The committee accepting a submission or returning it with a comment.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Urge',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('assignment', fields.ForeignKeyField('models.Assignment', source_field='assignment_id', db_constraint=True, to_field='id', related_name='urges', on_delete=OnDelete.CASCADE)),
                ('by', fields.ForeignKeyField('models.Member', source_field='by_id', db_constraint=True, to_field='id', related_name='supervision_urges', on_delete=OnDelete.RESTRICT)),
                ('by_unit_id', fields.IntField(null=True, description='the duty unit that urged, null for the committee')),
                ('note', fields.TextField(default='', unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'supervision_urge', 'app': 'models', 'pk_attr': 'id', 'table_description': 'An urge (催办) sent to the admins of an assigned unit, by the committee or the duty unit.'},
            bases=['Model'],
        ),
    ]
