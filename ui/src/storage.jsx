import { useState } from 'preact/hooks';
import { ApiError, api, getCsrfToken, post } from './api.js';
import { useLive } from './hooks.js';
import { Action, Form, Loading, Page, Section, bytes, enc, when } from './forms.jsx';
import { level } from './levels.js';

// Storage (herd storage add|list|show|remove), disks (herd disk create|
// list|show|resize|delete|promote|resolve|verify|attach) and ISOs (herd iso
// upload|list|delete).

function usageOf(s, node) {
  const r = (s.nodes || {})[node];
  if (!r || !r.ok || !r.size) return null;
  return ((r.size - r.free) / r.size) * 100;
}

function Reach({ s }) {
  return Object.entries(s.nodes || {}).map(([node, r]) => {
    const pct = usageOf(s, node);
    const lvl = pct === null ? '' : level(pct);
    return (
      <div class={`reach ${r.ok ? 'ok' : 'bad'} ${lvl}`} data-testid={`storage-${s.name}-${node}`} data-level={lvl}>
        <strong>{node}</strong>{' '}
        {r.ok ? (pct === null ? 'reached' : `${Math.round(pct)} % used, ${bytes(r.free)} free of ${bytes(r.size)}`) : r.problem}
      </div>
    );
  });
}

function StorageSection({ storages }) {
  return (
    <Section title="Storage" testid="storage-section">
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Type</th>
            <th>Where</th>
            <th>Cluster share</th>
            <th>On each node</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {storages.map((s) => (
            <tr data-testid={`storage-row-${s.name}`}>
              <td class="name">{s.name}</td>
              <td>{s.type}</td>
              <td>{s.path || `${s.portal || ''} ${s.target || ''}`}</td>
              <td>{s.cluster_share ? 'yes (ISOs)' : ''}</td>
              <td>
                <Reach s={s} />
              </td>
              <td>
                <Action
                  testid={`storage-remove-${s.name}`}
                  label="Remove"
                  secondary
                  confirm={`Remove storage ${s.name}? (its files stay)`}
                  run={async () => {
                    await api('DELETE', `/api/v1/storage/${enc(s.name)}`);
                    return `Storage ${s.name} was removed.`;
                  }}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Add storage</h3>
      <Form
        testid="storage-add"
        label="Add storage"
        fields={[
          { key: 'name', label: 'Name' },
          { key: 'type', label: 'Type', type: 'select', options: ['dir', 'iscsi'] },
          { key: 'path', label: 'Path (dir: mounted at the same path on every node)', placeholder: '/srv/vms' },
          { key: 'portal', label: 'Portal (iscsi)', placeholder: '10.0.0.5:3260' },
          { key: 'target', label: 'Target (iscsi)', placeholder: 'iqn.2024-01.example:store' },
          { key: 'cluster_share', label: 'Cluster share (holds the ISOs)', type: 'checkbox', names: ['share'] },
        ]}
        submit={async (v) => {
          const body = { name: v.name, type: v.type };
          for (const k of ['path', 'portal', 'target']) if (v[k]) body[k] = v[k];
          if (v.cluster_share) body.cluster_share = true;
          await post('/api/v1/storage', body);
          return `Storage ${v.name} was added.`;
        }}
      />
    </Section>
  );
}

// "n1 uptodate, syncing 42 %" (the sync's source; its target: "n2
// inconsistent, being synced"), "n1 outdated, standalone (disk
// detached)": the store's state and what the node's herd-san says, as
// herd disk list has it (src/cli/disk.c); herd-san's reports come live
// (a facts event), the store's with its change.
function replicaText(r) {
  const san = r.herd_san || null;
  const disk = san && san.disk;
  const sync = san && san.sync;
  let live = '';
  if (sync && typeof sync === 'object' && sync.role === 'target') {
    live = ', being synced';
  } else if (sync && typeof sync === 'object') {
    live = `, syncing ${sync.total > 0 ? Math.floor((sync.done * 100) / sync.total) : 0} %`;
  } else if (san && san.conn && san.conn !== 'connected') {
    live = `, ${san.conn}`;
  } else if (!san) {
    live = ' (no herd-san report)';
  }
  return `${r.node} ${r.state}${live}${disk ? ` (disk ${disk.state})` : ''}`;
}

// The last comparison of an eSAN disk's replicas (herd disk verify), as
// herd disk show has it.
function verifyText(v) {
  if (!v.done) return `Comparing the replicas on ${v.node}…`;
  const at = v.time_ms ? ` (${when(v.time_ms)})` : '';
  if (v.error) return `Could not compare the replicas: ${v.error}${at}`;
  if (v.equal) return `The replicas are identical: ${bytes(v.compared)} compared${at}.`;
  return `The replicas differ: ${bytes(v.differ)} of ${bytes(v.compared)}, the first at byte ${v.first}${at}.`;
}

function verifyClass(v) {
  if (!v.done) return 'muted';
  return v.equal && !v.error ? 'good' : 'bad';
}

function DiskRow({ d, nodes }) {
  const [size, setSize] = useState('');
  return (
    <tr data-testid={`disk-row-${d.name}`}>
      <td class="name">{d.name}</td>
      <td>
        {d.storage || (d.esan ? `eSAN ${(d.esan.replicas || []).map(replicaText).join(', ')}` : '–')}
        {d.esan && d.esan.verify && (
          <div class={verifyClass(d.esan.verify)} data-testid={`disk-${d.name}-verify`}>
            {verifyText(d.esan.verify)}
          </div>
        )}
      </td>
      <td>{d.format}</td>
      <td data-testid={`disk-${d.name}-size`}>{bytes(d.size)}</td>
      <td>{d.used === null ? '–' : bytes(d.used)}</td>
      <td>{d.vm || <span class="muted">free</span>}</td>
      <td class="row-actions">
        <input class="small" placeholder="new size, e.g. 40G" value={size} onInput={(e) => setSize(e.currentTarget.value)} data-testid={`disk-${d.name}-newsize`} />
        <Action
          testid={`disk-resize-${d.name}`}
          label="Grow"
          secondary
          run={async () => {
            const r = await post(`/api/v1/disks/${enc(d.name)}/resize`, { size });
            return `Disk ${d.name} is ${bytes(r && r.size ? r.size : 0)} now.`;
          }}
        />
        {d.esan && (
          <>
            <Action testid={`disk-verify-${d.name}`} label="Verify" secondary run={async () => (await post(`/api/v1/disks/${enc(d.name)}/verify`), 'Verification started: its result shows here.')} />
            {nodes.map((n) => (
              <Action
                testid={`disk-promote-${d.name}-${n}`}
                label={`Promote ${n}`}
                secondary
                confirm={`Declare ${n}'s replica up to date as it is? What the other replica holds beyond it is lost.`}
                run={async () => (await post(`/api/v1/disks/${enc(d.name)}/promote`, { node: n, force: true }), `${n}'s replica is the disk now; the other is synchronised from it.`)}
              />
            ))}
            {(d.esan.replicas || []).filter((r) => r.herd_san && r.herd_san.disk).map((r) => (
              <Action
                testid={`disk-attach-${d.name}-${r.node}`}
                label={`Attach ${r.node}`}
                secondary
                confirm={`Attach ${r.node}'s replica again (its disk replaced)? It is synchronised in full.`}
                run={async () => (await post(`/api/v1/disks/${enc(d.name)}/attach`, { node: r.node }), `${r.node}'s replica is attached again; its full sync is a job.`)}
              />
            ))}
            {nodes.map((n) => (
              <Action
                testid={`disk-resolve-${d.name}-${n}`}
                label={`Keep ${n}`}
                secondary
                confirm={`Resolve the split by keeping ${n}'s replica?`}
                run={async () => (await post(`/api/v1/disks/${enc(d.name)}/resolve`, { keep: n }), `Kept ${n}'s replica.`)}
              />
            ))}
          </>
        )}
        <Action
          testid={`disk-delete-${d.name}`}
          label="Delete"
          secondary
          confirm={`Delete disk ${d.name} and its data?`}
          run={async () => {
            await api('DELETE', `/api/v1/disks/${enc(d.name)}`);
            return `Disk ${d.name} was deleted.`;
          }}
        />
      </td>
    </tr>
  );
}

function DiskSection({ disks, storages, nodes }) {
  return (
    <Section title="Disks" testid="disks-section">
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Storage</th>
            <th>Format</th>
            <th>Size</th>
            <th>Used</th>
            <th>VM</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {disks.map((d) => (
            <DiskRow d={d} nodes={d.esan ? (d.esan.replicas || []).map((r) => r.node) : []} />
          ))}
        </tbody>
      </table>
      <h3>Create a disk</h3>
      <Form
        testid="disk-create"
        label="Create disk"
        fields={[
          { key: 'name', label: 'Name' },
          { key: 'storage', label: 'Storage', type: 'select', options: [...storages.map((s) => s.name), { value: '-', label: '(eSAN: no storage)' }] },
          { key: 'size', label: 'Size', placeholder: '20G' },
          { key: 'format', label: 'Format', type: 'select', options: ['qcow2', 'raw'] },
          { key: 'lun', label: 'LUN (iSCSI storage: instead of size and format)', type: 'number' },
          { key: 'esan', label: 'eSAN replicas on two nodes', placeholder: nodes.slice(0, 2).join(',') },
        ]}
        submit={async (v) => {
          const body = { name: v.name };
          if (v.lun !== '') body.lun = Number(v.lun);
          else body.size = v.size;
          if (v.storage && v.storage !== '-') {
            body.storage = v.storage;
            if (v.lun === '') body.format = v.format;
          }
          if (v.esan) body.esan = v.esan;
          const r = await post('/api/v1/disks', body);
          return `Disk ${v.name} was created (${bytes(r && r.size ? r.size : 0)}).`;
        }}
      />
    </Section>
  );
}

// The ISO's bytes as the request's body, with the upload's progress.
function upload(name, file, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('PUT', `/api/v1/isos/${enc(name)}`);
    x.setRequestHeader('Content-Type', 'application/octet-stream');
    x.setRequestHeader('Accept', 'application/json');
    const token = getCsrfToken();
    if (token) x.setRequestHeader('X-CSRF-Token', token);
    x.upload.onprogress = (e) => e.lengthComputable && onProgress(Math.round((e.loaded / e.total) * 100));
    x.onload = () => {
      let data = null;
      try {
        data = JSON.parse(x.responseText);
      } catch {
        data = null;
      }
      if (x.status >= 200 && x.status < 300) resolve(data);
      else {
        const err = data && data.error;
        reject(new ApiError(err ? err.message : `The server answered ${x.status}.`, err ? err.code : 'http', x.status));
      }
    };
    x.onerror = () => reject(new ApiError('This node does not answer.', 'unreachable', 0));
    x.send(file);
  });
}

function IsoSection({ isos }) {
  const [pct, setPct] = useState(null);
  return (
    <Section title="ISO images" testid="isos-section">
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Size</th>
            <th>SHA-256</th>
            <th>In use by</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {isos.map((i) => (
            <tr data-testid={`iso-row-${i.name}`}>
              <td class="name">{i.name}</td>
              <td>{bytes(i.size)}</td>
              <td class="mono">{i.sha256.slice(0, 16)}…</td>
              <td>{i.vm || ''}</td>
              <td>
                <Action
                  testid={`iso-delete-${i.name}`}
                  label="Delete"
                  secondary
                  confirm={`Delete ISO ${i.name}?`}
                  run={async () => {
                    await api('DELETE', `/api/v1/isos/${enc(i.name)}`);
                    return `ISO ${i.name} was deleted.`;
                  }}
                />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Upload an ISO</h3>
      <Form
        testid="iso-upload"
        label="Upload"
        fields={[
          { key: 'file', label: 'File', type: 'file', accept: '.iso,.img' },
          { key: 'name', label: 'Name (default: the file name without .iso)', names: ['iso'] },
        ]}
        submit={async (v) => {
          if (!v.file) throw new Error('Choose a file to upload.');
          const name = v.name || v.file.name.replace(/\.iso$/i, '');
          setPct(0);
          try {
            const r = await upload(name, v.file, setPct);
            return `ISO ${name} was uploaded${r && r.sha256 ? ` (SHA-256 ${r.sha256})` : ''}.`;
          } finally {
            setPct(null);
          }
        }}
      />
      {pct !== null && (
        <div class="bar ok" data-testid="iso-progress">
          <div class="fill" style={{ width: `${pct}%` }} />
          <span>{pct} %</span>
        </div>
      )}
    </Section>
  );
}

export function StoragePage() {
  const { data, error } = useLive(['/api/v1/storage', '/api/v1/disks', '/api/v1/isos', '/api/v1/nodes'], ['storage', 'disk', 'iso', 'vm', 'node', 'membership', 'facts'], 15000);
  if (!data) return <Loading error={error} />;
  const [storages, disks, isos, nodes] = data;
  return (
    <Page title="Storage, disks and ISOs" testid="page-storage" error={error}>
      <StorageSection storages={storages} />
      <DiskSection disks={disks} storages={storages} nodes={nodes.map((n) => n.name)} />
      <IsoSection isos={isos} />
    </Page>
  );
}
