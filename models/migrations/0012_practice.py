from tortoise import migrations
from tortoise.migrations import operations as ops
from orjson import loads
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise import fields
from tortoise.indexes import Index

class Migration(migrations.Migration):
    dependencies = [('models', '0011_partitions')]

    initial = False

    operations = [
        ops.CreateModel(
            name='ActivityRecord',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('activity', fields.OneToOneField('models.Activity', source_field='activity_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('minutes', fields.TextField(default='', unique=False)),
                ('photos', fields.JSONField(default=list, description='stored images, each in the attachment shape', encoder=JSON_DUMPS, decoder=loads)),
                ('recorded_by', fields.ForeignKeyField('models.Member', source_field='recorded_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('recorded_unit', fields.ForeignKeyField('models.Unit', source_field='recorded_unit_id', null=True, description='the unit that recorded it (null: committee staff)', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ('updated_at', fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={'table': 'activity_record', 'app': 'models', 'pk_attr': 'id', 'table_description': "One activity's record: its minutes (纪要) and photos, rewritten in place by its organiser."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Practice',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('unit', fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
                ('zone', fields.ForeignKeyField('models.Zone', source_field='zone_id', null=True, description="the unit's zone when it was published", db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('year', fields.IntField(description='the year it was published (Asia/Shanghai)')),
                ('title', fields.CharField(max_length=128)),
                ('body', fields.TextField(unique=False)),
                ('images', fields.JSONField(default=list, description='stored images, each in the attachment shape', encoder=JSON_DUMPS, decoder=loads)),
                ('author', fields.ForeignKeyField('models.Member', source_field='author_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('published_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('featured_at', fields.DatetimeField(null=True, description='set once, by the committee', auto_now=False, auto_now_add=False)),
                ('featured_by', fields.ForeignKeyField('models.Member', source_field='featured_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
                ('notice', fields.ForeignKeyField('models.Notice', source_field='notice_id', null=True, description='the notice that took it to every zone', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'practice', 'app': 'models', 'indexes': [Index(fields=['year', 'unit_id']), Index(fields=['zone_id', 'id'])], 'pk_attr': 'id', 'table_description': 'An experience a unit published: title, text and images.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='PracticeRead',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('practice', fields.ForeignKeyField('models.Practice', source_field='practice_id', db_constraint=True, to_field='id', related_name='reads', on_delete=OnDelete.CASCADE)),
                ('member', fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
                ('read_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={'table': 'practice_read', 'app': 'models', 'unique_together': (('practice', 'member'),), 'pk_attr': 'id', 'table_description': 'A member read a practice: one row per member, however often they open it.'},
            bases=['Model'],
        ),
    ]
