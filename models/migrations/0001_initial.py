from tortoise import migrations
from tortoise.migrations import operations as ops
from models.org import Role
from tortoise.fields.base import OnDelete
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name='Zone',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=64)),
                ('description', fields.TextField(default='', unique=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'zone', 'app': 'models', 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Unit',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('name', fields.CharField(unique=True, max_length=128)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', null=True, db_constraint=True, to_field='id', related_name='units', on_delete=OnDelete.SET_NULL)),
                ('district', fields.CharField(default='', max_length=64)),
                ('nature', fields.CharField(default='', description='nature of work', max_length=64)),
                ('member_count', fields.IntField(default=0)),
                ('strength', fields.IntField(default=50, description='party-building strength score 0..100')),
                ('invite_code', fields.CharField(unique=True, max_length=32)),
                ('duty_order', fields.IntField(null=True, description="position in the zone's duty order")),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'unit', 'app': 'models', 'pk_attr': 'id', 'table_description': "A directly affiliated unit's party organisation (直属单位党组织)."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Member',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('unit', fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, db_constraint=True, to_field='id', related_name='members', on_delete=OnDelete.RESTRICT)),
                ('name', fields.CharField(max_length=64)),
                ('phone', fields.CharField(max_length=20)),
                ('role', fields.CharEnumField(default=Role.MEMBER, description='MEMBER: member\nUNIT_ADMIN: unit_admin\nCOMMITTEE: committee', enum_type=Role, max_length=16)),
                ('openid', fields.CharField(null=True, unique=True, max_length=64)),
                ('username', fields.CharField(null=True, unique=True, max_length=64)),
                ('password_hash', fields.CharField(null=True, max_length=255)),
                ('token_version', fields.IntField(default=0)),
                ('is_active', fields.BooleanField(default=True)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'member', 'app': 'models', 'unique_together': (('unit', 'phone'),), 'pk_attr': 'id', 'table_description': 'A person: a party member of a unit, a unit admin, or committee staff (unit null).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='ImportRun',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('kind', fields.CharField(max_length=16)),
                ('filename', fields.CharField(max_length=255)),
                ('sha256', fields.CharField(max_length=64)),
                ('rows', fields.IntField()),
                ('created', fields.IntField()),
                ('updated', fields.IntField()),
                ('unchanged', fields.IntField()),
                ('by', fields.ForeignKeyField('models.Member', source_field='by_id', null=True, db_constraint=True, to_field='id', related_name='import_runs', on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'import_run', 'app': 'models', 'pk_attr': 'id', 'table_description': 'One accepted org import: what file, what it changed.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Liaison',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name='liaisons', on_delete=OnDelete.CASCADE)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', db_constraint=True, to_field='id', related_name='liaisons', on_delete=OnDelete.CASCADE)),
            ],
            options={'table': 'liaison', 'app': 'models', 'unique_together': (('member', 'zone'),), 'pk_attr': 'id', 'table_description': 'Committee staff assigned to a zone (挂点).'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Rotation',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', db_constraint=True, to_field='id', related_name='rotations', on_delete=OnDelete.CASCADE)),
                ('unit', fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name='rotations', on_delete=OnDelete.RESTRICT)),
                ('year', fields.IntField()),
                ('quarter', fields.SmallIntField()),
                ('starts_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('ends_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'rotation', 'app': 'models', 'unique_together': (('zone', 'starts_at'),), 'indexes': [Index(fields=['zone_id', 'ends_at'])], 'pk_attr': 'id', 'table_description': 'A unit on duty in a zone over [starts_at, ends_at) — normally one Asia/Shanghai quarter.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='RotationChange',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', db_constraint=True, to_field='id', related_name='rotation_changes', on_delete=OnDelete.CASCADE)),
                ('from_unit', fields.ForeignKeyField('models.Unit', source_field='from_unit_id', db_constraint=True, to_field='id', related_name='rotation_changes_from', on_delete=OnDelete.RESTRICT)),
                ('to_unit', fields.ForeignKeyField('models.Unit', source_field='to_unit_id', db_constraint=True, to_field='id', related_name='rotation_changes_to', on_delete=OnDelete.RESTRICT)),
                ('effective_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('reason', fields.TextField(unique=False)),
                ('changed_by', fields.ForeignKeyField('models.Member', source_field='changed_by_id', db_constraint=True, to_field='id', related_name='rotation_changes', on_delete=OnDelete.RESTRICT)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'rotation_change', 'app': 'models', 'pk_attr': 'id', 'table_description': 'History of explicit committee changes of the duty unit mid-quarter.'},
            bases=['Model'],
        ),
    ]
