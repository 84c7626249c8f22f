import { useState } from 'preact/hooks';
import { api } from './api.js';
import { useLive } from './hooks.js';

// The form that makes a VM from its hardware (POST /api/v1/vms, as `herd vm
// create`) or changes one (PUT /api/v1/vms/NAME, as `herd vm set`).  Every
// change goes in one request, which the server applies whole or refuses
// whole; a refusal shows the server's sentence next to the field it
// concerns (fieldOf), or above the form when it concerns none.

const BUSES = ['virtio', 'scsi', 'sata', 'ide'];
const MODELS = ['virtio', 'e1000', 'rtl8139'];
const PRIORITIES = ['high', 'medium', 'low', 'disabled'];

// The form field a sentence of the server concerns: "Field 'x' …" names it;
// the other refusals (src/api/vm_hardware.c, store/vm.c, common/size.c)
// are known by what they speak of.  null: the form as a whole.
const FIELD_WORDS = [
  [/\bVM name\b|^VM \S+ exists already|\bthe new VM's name\b/i, 'name'],
  [/\bmemory\b/i, 'memory'],
  [/\bNIC\b|virtual switch|MAC address/i, 'nics'],
  [/\bdisks?\b|disk bus/i, 'disks'],
  [/floppy/i, 'floppy'],
  [/\bISO\b|CD-ROM/i, 'cdrom'],
  [/firmware/i, 'firmware'],
  [/boot order/i, 'boot'],
  [/preferred node or a node set/i, 'preferred'],
  [/^Preferred node/i, 'preferred'],
  [/\bsticky\b/i, 'sticky'],
  [/node set/i, 'nodes'],
];
const FIELD_ALIASES = { restricted: 'nodes', hardware: 'disks' };
const HARDWARE_FIELDS = ['memory', 'vcpus', 'disks', 'nics', 'cdrom', 'floppy', 'firmware', 'boot'];

export function fieldOf(message) {
  const named = /Field '([a-z_]+)'/.exec(message) || /^'([a-z_]+)'/.exec(message);
  if (named) return FIELD_ALIASES[named[1]] || named[1];
  for (const [re, field] of FIELD_WORDS) if (re.test(message)) return field;
  return null;
}

const str = (v) => (v === null || v === undefined ? '' : String(v));

// The form's values of an existing VM (the API's JSON), or of a new one.
function initial(vm) {
  const hw = (vm && vm.hardware) || {};
  return {
    name: vm ? vm.name : '',
    memory: vm ? `${vm.memory_mib}M` : '',
    vcpus: vm ? str(vm.vcpus) : '1',
    disks: (hw.disks || []).map((d) => ({ disk: d.name || d.disk, bus: d.bus })),
    nics: (hw.nics || []).map((n) => ({ network: n.network_name || n.network, model: n.model, mac: n.mac })),
    cdrom: str(hw.cdrom),
    floppy: str(hw.floppy),
    firmware: hw.firmware || 'bios',
    boot: hw.boot || 'disk',
    ha: vm ? !!vm.ha : false,
    failback: vm ? !!vm.failback : true,
    preferred: vm ? str(vm.preferred) : '',
    sticky: vm ? str(vm.sticky) : '',
    nodes: vm ? (vm.nodes || []).map((n) => `${n.node}:${n.priority}`).join(',') : '',
    restricted: vm ? !!vm.restricted : false,
    group: vm ? str(vm.group) : '',
    pool: vm ? str(vm.pool) : '',
    shutdown_timeout_s: vm ? str(vm.shutdown_timeout_s) : '',
    restart_priority: vm ? vm.restart_priority || 'medium' : 'medium',
    start_after: vm ? str(vm.start_after_name || vm.start_after) : '',
    start_wait_s: vm ? str(vm.start_wait_s) : '',
  };
}

// A number as the server wants it, or the text as typed (the server says
// what is wrong with it).
const num = (s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : s);
const orNull = (s) => (s.trim() === '' ? null : s.trim());

const ATTRS = {
  ha: (v) => v,
  failback: (v) => v,
  preferred: orNull,
  // Set here; unbound with Release on the VM's page (herd vm release).
  sticky: orNull,
  nodes: orNull,
  restricted: (v) => v,
  group: orNull,
  pool: orNull,
  shutdown_timeout_s: num,
  restart_priority: (v) => v,
  start_after: orNull,
  start_wait_s: num,
};

// The request's body: for a new VM everything given, for a change only
// what differs from the VM as it is.
function bodyOf(f, was, hasHardware) {
  const body = {};
  const changed = (k) => !was || JSON.stringify(f[k]) !== JSON.stringify(was[k]);
  for (const [k, conv] of Object.entries(ATTRS)) {
    if (!changed(k)) continue;
    const v = conv(f[k]);
    if (was || (v !== null && v !== '')) body[k] = v;
  }
  if (!hasHardware) return body;
  if (!was) body.name = f.name.trim();
  if (changed('memory')) body.memory = /^\s*$/.test(f.memory) ? undefined : f.memory.trim();
  if (changed('vcpus')) body.vcpus = num(f.vcpus);
  const hw = {};
  if (changed('disks')) hw.disks = f.disks.map((d) => ({ disk: d.disk, bus: d.bus }));
  if (changed('nics')) hw.nics = f.nics.map((n) => (n.mac.trim() ? { network: n.network, model: n.model, mac: n.mac.trim() } : { network: n.network, model: n.model }));
  if (changed('cdrom') && (was || f.cdrom)) hw.cdrom = orNull(f.cdrom);
  if (changed('floppy') && (was || f.floppy)) hw.floppy = orNull(f.floppy);
  if (changed('firmware')) hw.firmware = f.firmware;
  if (changed('boot')) hw.boot = f.boot.trim();
  if (!was || Object.keys(hw).length) body.hardware = hw;
  return body;
}

function Err({ errors, field }) {
  const e = errors[field];
  return e ? (
    <div class="field-error" role="alert" data-testid={`err-${field}`}>
      {e}
    </div>
  ) : null;
}

function Field({ label, field, errors, children, hint }) {
  return (
    <label class={`field ${errors[field] ? 'invalid' : ''}`}>
      <span class="label">{label}</span>
      {children}
      {hint && <span class="hint">{hint}</span>}
      <Err errors={errors} field={field} />
    </label>
  );
}

// A <select> of options (strings), an empty choice first if @empty is given.
function Choice({ options, empty, ...rest }) {
  return (
    <select {...rest}>
      {empty !== undefined && <option value="">{empty}</option>}
      {options.map((o) => (
        <option value={o}>{o}</option>
      ))}
    </select>
  );
}

// A field that is a list (disks, NICs): a row of inputs each, with Remove,
// and Add.
function ListField({ label, field, errors, items, row, addLabel, onAdd, onDrop }) {
  return (
    <div class={`field ${errors[field] ? 'invalid' : ''}`}>
      <span class="label">{label}</span>
      {items.map((item, i) => (
        <div class="row" data-testid={`f-${field}-${i}`}>
          {row(item, i)}
          <button type="button" class="secondary" onClick={() => onDrop(i)}>
            Remove
          </button>
        </div>
      ))}
      <button type="button" class="secondary" onClick={onAdd} data-testid={`f-add-${field}`}>
        {addLabel}
      </button>
      <Err errors={errors} field={field} />
    </div>
  );
}

// vm: the VM's JSON to change it, or null to make a new one.
export function VmForm({ vm, onDone, onCancel }) {
  const { data } = useLive(['/api/v1/disks', '/api/v1/networks', '/api/v1/isos', '/api/v1/nodes'], ['disk', 'network', 'iso', 'node']);
  const [disks, networks, isos, nodes] = data || [[], [], [], []];
  const was = vm ? initial(vm) : null;
  const hasHardware = !vm || !!vm.hardware;
  const [f, setF] = useState(() => initial(vm));
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const set = (k) => (e) => setF({ ...f, [k]: e.target.type === 'checkbox' ? e.target.checked : e.target.value });
  const setRow = (list, i, k) => (e) => setF({ ...f, [list]: f[list].map((r, j) => (j === i ? { ...r, [k]: e.target.value } : r)) });
  const drop = (list) => (i) => setF({ ...f, [list]: f[list].filter((_, j) => j !== i) });

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    const body = bodyOf(f, was, hasHardware);
    try {
      const out = vm
        ? await api('PUT', `/api/v1/vms/${encodeURIComponent(vm.name)}`, body)
        : await api('POST', '/api/v1/vms', body);
      onDone(out);
    } catch (err) {
      // A field this form does not show (a VM's name once it exists, the
      // hardware of a VM defined from XML): above the form.
      const field = fieldOf(err.message);
      const hidden = (field === 'name' && vm) || (!hasHardware && HARDWARE_FIELDS.includes(field));
      setErrors({ [field && !hidden ? field : 'form']: err.message });
    } finally {
      setBusy(false);
    }
  };

  const inp = (k, props = {}) => <input name={k} value={f[k]} onInput={set(k)} data-testid={`f-${k}`} {...props} />;
  const sel = (k, options, empty) => <Choice name={k} value={f[k]} onChange={set(k)} options={options} empty={empty} data-testid={`f-${k}`} />;
  const names = (list) => list.map((o) => o.name);

  return (
    <form class="vm-form" onSubmit={submit} data-testid="vm-form">
      {errors.form && (
        <div class="error" role="alert" data-testid="err-form">
          {errors.form}
        </div>
      )}
      <fieldset>
        <legend>Hardware</legend>
        {!hasHardware && <p class="muted">This VM was defined from libvirt domain XML: its memory, vCPUs and devices are in its XML (herd vm dumpxml / define).</p>}
        {!vm && (
          <Field label="Name" field="name" errors={errors}>
            {inp('name', { autoFocus: true })}
          </Field>
        )}
        {hasHardware && (
          <>
            <Field label="Memory" field="memory" errors={errors} hint="e.g. 512M, 2G">
              {inp('memory')}
            </Field>
            <Field label="vCPUs" field="vcpus" errors={errors}>
              {inp('vcpus')}
            </Field>
            <ListField
              label="Disks" field="disks" errors={errors} items={f.disks} addLabel="Add disk"
              onAdd={() => setF({ ...f, disks: [...f.disks, { disk: '', bus: 'virtio' }] })} onDrop={drop('disks')}
              row={(d, i) => (
                <>
                  <Choice value={d.disk} onChange={setRow('disks', i, 'disk')} options={names(disks)} empty="choose a disk" aria-label="Disk" />
                  <Choice value={d.bus} onChange={setRow('disks', i, 'bus')} options={BUSES} aria-label="Bus" />
                </>
              )}
            />
            <ListField
              label="Network" field="nics" errors={errors} items={f.nics} addLabel="Add NIC"
              onAdd={() => setF({ ...f, nics: [...f.nics, { network: '', model: 'virtio', mac: '' }] })} onDrop={drop('nics')}
              row={(n, i) => (
                <>
                  <Choice value={n.network} onChange={setRow('nics', i, 'network')} options={names(networks)} empty="choose a virtual switch" aria-label="Virtual switch" />
                  <Choice value={n.model} onChange={setRow('nics', i, 'model')} options={MODELS} aria-label="Model" />
                  <input value={n.mac} onInput={setRow('nics', i, 'mac')} placeholder="MAC (or a new one)" aria-label="MAC" data-testid={`f-nics-${i}-mac`} />
                </>
              )}
            />
            <Field label="CD-ROM" field="cdrom" errors={errors}>
              {sel('cdrom', names(isos), 'empty')}
            </Field>
            <Field label="Floppy" field="floppy" errors={errors}>
              {sel('floppy', names(isos), 'no floppy drive')}
            </Field>
            <Field label="Firmware" field="firmware" errors={errors}>
              {sel('firmware', ['bios', 'uefi'])}
            </Field>
            <Field label="Boot order" field="boot" errors={errors} hint="disk, cdrom, network, floppy">
              {inp('boot')}
            </Field>
          </>
        )}
      </fieldset>
      <fieldset>
        <legend>High availability and placement</legend>
        <Field label="HA" field="ha" errors={errors}>
          <input type="checkbox" name="ha" checked={f.ha} onChange={set('ha')} data-testid="f-ha" />
        </Field>
        <Field label="Fail back" field="failback" errors={errors}>
          <input type="checkbox" name="failback" checked={f.failback} onChange={set('failback')} data-testid="f-failback" />
        </Field>
        <Field label="Preferred node" field="preferred" errors={errors}>
          {sel('preferred', names(nodes), 'none')}
        </Field>
        <Field label="Bound to node (sticky)" field="sticky" errors={errors} hint="runs only there, not restarted elsewhere; Release on its page unbinds it">
          {sel('sticky', names(nodes), was && was.sticky ? undefined : 'not bound')}
        </Field>
        <Field label="Node set" field="nodes" errors={errors} hint="NODE[:PRIORITY],… e.g. n2:2,n1:1">
          {inp('nodes')}
        </Field>
        <Field label="Only on the node set" field="restricted" errors={errors}>
          <input type="checkbox" name="restricted" checked={f.restricted} onChange={set('restricted')} data-testid="f-restricted" />
        </Field>
        <Field label="Anti-affinity group" field="group" errors={errors}>
          {inp('group')}
        </Field>
        <Field label="Pool" field="pool" errors={errors}>
          {inp('pool')}
        </Field>
        <Field label="Restart priority" field="restart_priority" errors={errors}>
          {sel('restart_priority', PRIORITIES)}
        </Field>
        <Field label="Start after VM" field="start_after" errors={errors}>
          {inp('start_after')}
        </Field>
        <Field label="Start wait (s)" field="start_wait_s" errors={errors}>
          {inp('start_wait_s')}
        </Field>
        <Field label="Shutdown timeout (s)" field="shutdown_timeout_s" errors={errors}>
          {inp('shutdown_timeout_s')}
        </Field>
      </fieldset>
      <div class="toolbar">
        <button type="submit" disabled={busy} data-testid="f-submit">
          {vm ? 'Save' : 'Create'}
        </button>
        {onCancel && (
          <button type="button" class="secondary" onClick={onCancel}>
            Cancel
          </button>
        )}
        {busy && <span class="muted">saving…</span>}
      </div>
    </form>
  );
}
