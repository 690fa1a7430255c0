// The management API of Sluice: every answer is the envelope {success, message, data}.
// Failures throw ApiError with the envelope's human message and the HTTP status.

export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** Calls `path` with an optional JSON body and answers the envelope's `data`. */
export async function request(method, path, body) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError('The Sluice server cannot be reached. Check your connection and try again.', 0);
  }
  let envelope = null;
  try {
    envelope = await response.json();
  } catch {
    envelope = null;
  }
  if (!response.ok || !envelope || envelope.success === false) {
    const message = (envelope && envelope.message) || `The request failed (HTTP ${response.status}).`;
    const error = new ApiError(message, response.status);
    if (response.status === 401 && !path.startsWith('/api/user/login') && !path.startsWith('/api/token/login')) {
      window.dispatchEvent(new CustomEvent('sluice:unauthorized'));
    }
    throw error;
  }
  return envelope.data;
}

export const get = (path) => request('GET', path);
export const post = (path, body = {}) => request('POST', path, body);
export const put = (path, body = {}) => request('PUT', path, body);
export const del = (path) => request('DELETE', path);

/** Builds a query string from the defined, non-empty values of `params`. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/** A page of a collection: normalises `{items, total}` and plain arrays. */
export function pageOf(data) {
  if (Array.isArray(data)) return { items: data, total: data.length };
  if (data && Array.isArray(data.items)) return { items: data.items, total: data.total ?? data.items.length };
  if (data && Array.isArray(data.data)) return { items: data.data, total: data.total ?? data.data.length };
  return { items: [], total: 0 };
}
