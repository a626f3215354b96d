"""Reference columns that were plain integers become foreign keys: the database itself refuses
a line, an inbox row or a payment that names a unit, zone, member or drive that does not exist.

PostgreSQL (production, CI) adds each constraint in place. SQLite cannot add a foreign key to an
existing table without rebuilding it, and tortoise's rebuild drops the table's unique constraints
and indexes — the very things "exactly once" rests on — so on the embedded default these columns
stay plain integers (the ORM knows them as foreign keys either way)."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


class ColumnToForeignKey(ops.TortoiseOperation):
    """The integer field `old` becomes the foreign key `new` on the same column."""

    def __init__(self, model_name: str, old: str, new: str, field: fields.Field) -> None:
        self.model_name, self.old, self.new, self.field = model_name, old, new, field

    def describe(self) -> str:
        return f"Make {self.model_name}.{self.old} a foreign key"

    def state_forward(self, app_label, state) -> None:
        model_state = self.get_model_state(state, app_label, self.model_name)
        model_state.fields.pop(self.old)
        model_state.fields[self.new] = self.field
        state.reload_models({(app_label, self.model_name),
                             state.apps.split_reference(self.field.model_name)})

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor is None:
            return
        if state_editor.client.capabilities.dialect != "postgres":
            return
        model = new_state.apps.get_model(f"{app_label}.{self.model_name}")
        target = new_state.apps.get_model(self.field.model_name)
        table, column = model._meta.db_table, self.old
        on_delete = {OnDelete.CASCADE: "CASCADE", OnDelete.SET_NULL: "SET NULL"}.get(
            self.field.on_delete, "RESTRICT")
        await state_editor._run_sql(
            f'ALTER TABLE "{table}" ADD CONSTRAINT "fk_{table}_{column}" FOREIGN KEY ("{column}") '
            f'REFERENCES "{target._meta.db_table}" ("id") ON DELETE {on_delete}')


class Migration(migrations.Migration):
    dependencies = [('models', '0004_rotations_ahead')]

    initial = False

    operations = [
        ColumnToForeignKey('Assignment', 'zone_id', 'zone',
                           fields.ForeignKeyField('models.Zone', source_field='zone_id', null=True, description='the zone of the unit when the item was assigned', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('Campaign', 'created_by_id', 'created_by',
                           fields.ForeignKeyField('models.Member', source_field='created_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('Campaign', 'fund_zone_id', 'fund_zone',
                           fields.ForeignKeyField('models.Zone', source_field='fund_zone_id', null=True, description='zone_fund drives: the zone whose ledger gets the money', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('CampaignTotal', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('CampaignTotal', 'zone_id', 'zone',
                           fields.ForeignKeyField('models.Zone', source_field='zone_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('Checkin', 'scanned_by_id', 'scanned_by',
                           fields.ForeignKeyField('models.Member', source_field='scanned_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('Checkin', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('ContestEntry', 'member_id', 'member',
                           fields.ForeignKeyField('models.Member', source_field='member_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('ContestEntry', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('ContestEntry', 'zone_id', 'zone',
                           fields.ForeignKeyField('models.Zone', source_field='zone_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('ContestRound', 'closed_by_id', 'closed_by',
                           fields.ForeignKeyField('models.Member', source_field='closed_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('Contribution', 'member_id', 'member',
                           fields.ForeignKeyField('models.Member', source_field='member_id', null=True, description='the payer, when a member', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('Contribution', 'recorded_by_id', 'recorded_by',
                           fields.ForeignKeyField('models.Member', source_field='recorded_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('Contribution', 'reverses_id', 'reverses',
                           fields.ForeignKeyField('models.Contribution', source_field='reverses_id', null=True, unique=True, description='the entry this one reverses', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('Contribution', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('Contribution', 'zone_id', 'zone',
                           fields.ForeignKeyField('models.Zone', source_field='zone_id', null=True, description='the unit zone when the contribution was made', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('DeadlineList', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
        ColumnToForeignKey('FundEntry', 'campaign_id', 'campaign',
                           fields.ForeignKeyField('models.Campaign', source_field='campaign_id', null=True, unique=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('FundEntry', 'decided_by_id', 'decided_by',
                           fields.ForeignKeyField('models.Member', source_field='decided_by_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('FundEntry', 'recorded_by_id', 'recorded_by',
                           fields.ForeignKeyField('models.Member', source_field='recorded_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('FundEntry', 'reverses_id', 'reverses',
                           fields.ForeignKeyField('models.FundEntry', source_field='reverses_id', null=True, unique=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('FundEntry', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, description='the paying unit of duty_unit and member_unit income', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('InboxItem', 'member_id', 'member',
                           fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
        ColumnToForeignKey('InboxItem', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('Notice', 'sender_id', 'sender',
                           fields.ForeignKeyField('models.Member', source_field='sender_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('Notice', 'sender_unit_id', 'sender_unit',
                           fields.ForeignKeyField('models.Unit', source_field='sender_unit_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('Refund', 'requested_by_id', 'requested_by',
                           fields.ForeignKeyField('models.Member', source_field='requested_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('ScanNonce', 'activity_id', 'activity',
                           fields.ForeignKeyField('models.Activity', source_field='activity_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
        ColumnToForeignKey('ScanNonce', 'member_id', 'member',
                           fields.ForeignKeyField('models.Member', source_field='member_id', null=True, db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('Signup', 'signed_up_by_id', 'signed_up_by',
                           fields.ForeignKeyField('models.Member', source_field='signed_up_by_id', null=True, description='a unit admin who signed up the member', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('SubscriptionGrant', 'member_id', 'member',
                           fields.ForeignKeyField('models.Member', source_field='member_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
        ColumnToForeignKey('UnitReceipt', 'signed_by_id', 'signed_by',
                           fields.ForeignKeyField('models.Member', source_field='signed_by_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.RESTRICT)),
        ColumnToForeignKey('UnitReceipt', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.CASCADE)),
        ColumnToForeignKey('Upload', 'unit_id', 'unit',
                           fields.ForeignKeyField('models.Unit', source_field='unit_id', null=True, description="the uploader's unit then: its admins may cite it", db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
        ColumnToForeignKey('Urge', 'by_unit_id', 'by_unit',
                           fields.ForeignKeyField('models.Unit', source_field='by_unit_id', null=True, description='the duty unit that urged, null for the committee', db_constraint=True, to_field='id', related_name=False, on_delete=OnDelete.SET_NULL)),
    ]
