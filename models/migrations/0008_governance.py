from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops

from models.governance import MeetingState, PlanEventKind, PlanState
from models.org import Position


class Migration(migrations.Migration):
    dependencies = [('models', '0007_inbox_by_notice')]

    initial = False

    operations = [
        ops.CreateModel(
            name='Handover',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rotation', fields.ForeignKeyField('models.Rotation', source_field='rotation_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('next_rotation', fields.ForeignKeyField('models.Rotation', source_field='next_rotation_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('report', fields.JSONField(null=True, description="the quarter's record, frozen when the outgoing side confirms", encoder=JSON_DUMPS, decoder=loads)),
                ('outgoing_note', fields.TextField(default='', unique=False)),
                ('incoming_plan', fields.TextField(default='', unique=False)),
                ('outgoing_confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('outgoing_confirmed_by', fields.ForeignKeyField('models.Member', source_field='outgoing_confirmed_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('incoming_confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('incoming_confirmed_by', fields.ForeignKeyField('models.Member', source_field='incoming_confirmed_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('closed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('flagged_at', fields.DatetimeField(null=True, description='still open after the boundary: liaisons told', auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'handover', 'app': 'models', 'unique_together': (('rotation',),), 'pk_attr': 'id', 'table_description': "交接: the outgoing rotation's report (prefilled from what was recorded in its quarter), the"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Meeting',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('year', fields.IntField()),
                ('quarter', fields.SmallIntField(description="the quarter under review (the current duty units')")),
                ('title', fields.CharField(max_length=128)),
                ('place', fields.CharField(default='', max_length=255)),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('state', fields.CharEnumField(default=MeetingState.SCHEDULED, description='SCHEDULED: scheduled\nHELD: held', enum_type=MeetingState, max_length=16)),
                ('minutes', fields.TextField(default='', unique=False)),
                ('held_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('created_by', fields.ForeignKeyField('models.Member', source_field='created_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'meeting', 'app': 'models', 'unique_together': (('year', 'quarter'),), 'pk_attr': 'id', 'table_description': "The quarter's regular meeting (例会) of the committee with every zone's current and next"},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Deployment',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('meeting', fields.ForeignKeyField('models.Meeting', source_field='meeting_id', db_constraint=True, to_field='id', related_name='deployments', on_delete=OnDelete.CASCADE)),
                ('title', fields.CharField(max_length=128)),
                ('detail', fields.TextField(default='', unique=False)),
                ('due_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('zone_ids', fields.JSONField(default=list, encoder=JSON_DUMPS, decoder=loads)),
                ('item', fields.ForeignKeyField('models.SupervisionItem', source_field='item_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_by', fields.ForeignKeyField('models.Member', source_field='created_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'meeting_deployment', 'app': 'models', 'pk_attr': 'id', 'table_description': 'A task the meeting deploys for the next quarter: it becomes a supervision item for the'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='MeetingZone',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('meeting', fields.ForeignKeyField('models.Meeting', source_field='meeting_id', db_constraint=True, to_field='id', related_name='zones', on_delete=OnDelete.CASCADE)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('rotation', fields.ForeignKeyField('models.Rotation', source_field='rotation_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('next_rotation', fields.ForeignKeyField('models.Rotation', source_field='next_rotation_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('report', fields.TextField(default='', unique=False)),
                ('reported_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('reported_by', fields.ForeignKeyField('models.Member', source_field='reported_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('comments', fields.TextField(default='', unique=False)),
                ('commented_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('commented_by', fields.ForeignKeyField('models.Member', source_field='commented_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'meeting_zone', 'app': 'models', 'unique_together': (('meeting', 'zone'),), 'pk_attr': 'id', 'table_description': "One zone at a meeting: the current duty unit's report, the committee's comments (讲评)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RotationWarning',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rotation', fields.ForeignKeyField('models.Rotation', source_field='rotation_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharField(max_length=32)),
                ('detail', fields.JSONField(default=dict, encoder=JSON_DUMPS, decoder=loads)),
                ('sent_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'rotation_warning', 'app': 'models', 'unique_together': (('rotation', 'kind'),), 'pk_attr': 'id', 'table_description': 'A guideline warning sent for a rotation (e.g. fewer than two activities held three weeks'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WorkPlan',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('rotation', fields.ForeignKeyField('models.Rotation', source_field='rotation_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('unit', fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('state', fields.CharEnumField(default=PlanState.DRAFT, description='DRAFT: draft\nSUBMITTED: submitted\nFILED: filed\nRETURNED: returned', enum_type=PlanState, max_length=16)),
                ('version', fields.IntField(default=0, description="the latest version's number")),
                ('submitted_version', fields.IntField(null=True)),
                ('submitted_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('decided_by', fields.ForeignKeyField('models.Member', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('decision_comment', fields.TextField(default='', unique=False)),
                ('filed_version', fields.IntField(null=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'work_plan', 'app': 'models', 'unique_together': (('rotation',),), 'pk_attr': 'id', 'table_description': "A rotation's work plan (工作计划). Its content lives in numbered versions, all kept."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PlanEvent',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('plan', fields.ForeignKeyField('models.WorkPlan', source_field='plan_id', db_constraint=True, to_field='id', related_name='events', on_delete=OnDelete.CASCADE)),
                ('kind', fields.CharEnumField(description='SUBMITTED: submitted\nFILED: filed\nRETURNED: returned\nCOMMENTED: commented', enum_type=PlanEventKind, max_length=16)),
                ('version', fields.IntField()),
                ('unit', fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('author', fields.ForeignKeyField('models.Member', source_field='author_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('body', fields.TextField(default='', unique=False)),
                ('at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'plan_event', 'app': 'models', 'pk_attr': 'id', 'table_description': "What happened to a plan, in order: comments of the zone's units, submissions, decisions."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='WorkPlanVersion',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('plan', fields.ForeignKeyField('models.WorkPlan', source_field='plan_id', db_constraint=True, to_field='id', related_name='versions', on_delete=OnDelete.CASCADE)),
                ('version', fields.IntField()),
                ('goals', fields.TextField(unique=False)),
                ('items', fields.JSONField(default=list, description='planned activities: kind, title, date, note', encoder=JSON_DUMPS, decoder=loads)),
                ('budget_fen', fields.BigIntField(default=0)),
                ('note', fields.TextField(default='', unique=False)),
                ('author', fields.ForeignKeyField('models.Member', source_field='author_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'work_plan_version', 'app': 'models', 'unique_together': (('plan', 'version'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Member',
            name='position',
            field=fields.CharEnumField(default=Position.MEMBER, description='post in the unit: 书记, 副书记, 委员 or member', enum_type=Position, max_length=24),
        ),
    ]
