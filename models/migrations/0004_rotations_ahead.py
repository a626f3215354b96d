from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [('models', '0003_attachments')]

    initial = False

    operations = [
        ops.CreateModel(
            name='RotationPlan',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('year', fields.IntField(unique=True)),
                ('generated_at', fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ('confirmed_at', fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ('confirmed_by', fields.ForeignKeyField('models.Member', source_field='confirmed_by_id', null=True, db_constraint=True, to_field='id', related_name='confirmed_rotation_plans', on_delete=OnDelete.SET_NULL)),
            ],
            options={'table': 'rotation_plan', 'app': 'models', 'pk_attr': 'id', 'table_description': "A year's rotations as generated ahead of time, for the committee to confirm or reorder."},
            bases=['Model'],
        ),
        ops.AddField(
            model_name='Activity',
            name='reminded_at',
            field=fields.DatetimeField(null=True, description='the day-before reminder went out', auto_now=False, auto_now_add=False),
        ),
        ops.AlterField(
            model_name='NoticeBatch',
            name='enqueued_at',
            field=fields.DatetimeField(null=True, description='last hand-over to the queue', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='NoticeBatch',
            name='leased_until',
            field=fields.DatetimeField(null=True, description='a worker is pushing it until then', auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name='Rotation',
            name='told_at',
            field=fields.DatetimeField(null=True, description='its unit was told it is on duty next', auto_now=False, auto_now_add=False),
        ),
    ]
