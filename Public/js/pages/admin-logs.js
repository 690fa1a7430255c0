// Admin: every call on the gateway.
import { pageHeader } from '../ui.js';
import { logsSection } from './logs.js';

export async function render(container) {
  container.append(pageHeader('All logs'), logsSection({ path: '/api/log/', showUser: true, heading: 'Calls of every user' }));
}
