import { useEffect, useState } from 'preact/hooks';
import { api, get } from './api.js';
import { useSubmit } from './hooks.js';

// A VM's libvirt domain XML (herd vm dumpxml), and defining a VM from XML
// or changing a VM's XML (herd vm define: POST /api/v1/vms {xml}; a VM of
// the same UUID gets it as a new configuration version).  The server
// parses the XML with libvirt's parser and says what is wrong with it,
// shown by the text; a refused define changes nothing.

async function define(xml) {
  return api('POST', '/api/v1/vms', { xml });
}

function XmlEditor({ initial, testid, label, note, onDefined }) {
  const [xml, setXml] = useState(initial);
  const { busy, error, submit } = useSubmit(async () => onDefined(await define(xml)));
  return (
    <form class="vm-xml" onSubmit={submit} data-testid={testid}>
      {note && <p class="muted">{note}</p>}
      <div class={`field ${error ? 'invalid' : ''}`}>
        <textarea class="mono xml" rows={24} spellcheck={false} value={xml} onInput={(e) => setXml(e.currentTarget.value)} data-testid={`${testid}-text`} aria-label="Domain XML" />
        {error && (
          <div class="field-error" role="alert" data-testid={`${testid}-error`}>
            {error}
          </div>
        )}
      </div>
      <div class="toolbar">
        <button type="submit" disabled={busy || !xml.trim()} data-testid={`${testid}-submit`}>
          {label}
        </button>
        {busy && <span class="muted">saving…</span>}
      </div>
    </form>
  );
}

// The XML tab of a VM's page: its XML as herd keeps it, changed in place.
export function VmXml({ vm, onDefined }) {
  // The XML of configuration version @version: the text is made from it
  // afresh for each version (never from an older version's XML).
  const [got, setGot] = useState(null);
  const [error, setError] = useState(null);
  const [saved, setSaved] = useState(null);
  useEffect(() => {
    const version = vm.version;
    get(`/api/v1/vms/${encodeURIComponent(vm.name)}/xml`).then(
      (r) => setGot({ version, xml: r.xml }),
      (e) => setError(e.message),
    );
  }, [vm.name, vm.version]);
  if (error)
    return (
      <div class="error" role="alert">
        {error}
      </div>
    );
  if (!got || got.version !== vm.version) return <div class="loading">Loading…</div>;
  const note = vm.hardware
    ? 'herd made this XML from the VM\u2019s hardware (the Edit tab). Saving XML here makes it a VM defined from XML: its devices are then changed here, not in the form.'
    : 'This VM was defined from libvirt domain XML: its memory, vCPUs and devices are changed here (the Edit tab has herd\u2019s attributes).';
  return (
    <div>
      {saved && (
        <div class="success" role="status" data-testid="vm-xml-done">
          {saved}
        </div>
      )}
      <XmlEditor
        key={`${got.version}`}
        initial={got.xml}
        testid="vm-xml"
        label="Save XML"
        note={note}
        onDefined={(out) => {
          setSaved(`VM ${out.name}: its XML is configuration version ${out.version}.`);
          onDefined(out);
        }}
      />
    </div>
  );
}

// On the new VM's page: a VM from libvirt domain XML instead of the form.
export function VmDefine({ onDone }) {
  return (
    <XmlEditor
      initial=""
      testid="vm-define"
      label="Define from XML"
      note="Or paste libvirt domain XML (herd vm define): its name and UUID are the VM's; herd's attributes (HA, placement) are set in its Edit tab afterwards."
      onDefined={onDone}
    />
  );
}
