import { AlertsPage } from './alerts.jsx';
import { FenceDevicesPage } from './fence_devices.jsx';
import { JobPage, JobsPage } from './jobs.jsx';
import { NetworksPage } from './networks.jsx';
import { NodeList, NodePage } from './nodes.jsx';
import { SettingsPage } from './settings.jsx';
import { StoragePage } from './storage.jsx';
import { UsersPage } from './users.jsx';

// The cluster's pages beside the dashboard and the VMs: the header's
// links, and the page of a path (null: not one of these).
export const adminNav = [
  ['/nodes', 'Nodes'],
  ['/storage', 'Storage'],
  ['/networks', 'Switches'],
  ['/fence-devices', 'Fencing'],
  ['/users', 'Users'],
  ['/jobs', 'Jobs'],
  ['/alerts', 'Alerts'],
  ['/settings', 'Cluster'],
];

export function adminPage(path) {
  const one = (prefix) => (path.startsWith(prefix) ? decodeURIComponent(path.slice(prefix.length)) : null);
  if (path === '/nodes') return <NodeList />;
  if (one('/nodes/')) return <NodePage name={one('/nodes/')} />;
  if (path === '/storage') return <StoragePage />;
  if (path === '/networks') return <NetworksPage />;
  if (path === '/fence-devices') return <FenceDevicesPage />;
  if (path === '/users') return <UsersPage />;
  if (path === '/jobs') return <JobsPage />;
  if (one('/jobs/')) return <JobPage name={one('/jobs/')} />;
  if (path === '/alerts') return <AlertsPage />;
  if (path === '/settings') return <SettingsPage />;
  return null;
}
