/**
 * ASP.NET route templates as devhost matches them (the HTTP tests cover the same through a running host;
 * these pin the edge cases of the template language itself).
 */
import { compileRoute, comparePrecedence, RouteTemplateError } from '../../devhost/http/routes';

describe('compileRoute', () => {
  test('literal and parameter segments under the prefix', () => {
    const route = compileRoute('users/{id}/orders', 'api');
    expect(route.match('/api/users/7/orders')).toEqual({ id: '7' });
    expect(route.match('/api/users/7/orders/')).toEqual({ id: '7' });
    expect(route.match('/API/Users/7/ORDERS')).toEqual({ id: '7' });
    expect(route.match('/api/users/7')).toBeUndefined();
    expect(route.match('/users/7/orders')).toBeUndefined();
  });

  test('an empty prefix and a leading slash in the template', () => {
    expect(compileRoute('/hello', '').match('/hello')).toEqual({});
    expect(compileRoute('hello', 'v1/inner').match('/v1/inner/hello')).toEqual({});
  });

  test('optional parameters may be absent; several trailing optionals are allowed', () => {
    const route = compileRoute('a/{x?}/{y?}');
    expect(route.match('/a')).toEqual({});
    expect(route.match('/a/1')).toEqual({ x: '1' });
    expect(route.match('/a/1/2')).toEqual({ x: '1', y: '2' });
  });

  test('an optional parameter before a required segment is rejected', () => {
    expect(() => compileRoute('a/{x?}/b')).toThrow(RouteTemplateError);
  });

  test('defaults fill absent values', () => {
    expect(compileRoute('p/{n:int=3}').match('/p')).toEqual({ n: '3' });
    expect(compileRoute('p/{name=home}').match('/p/about')).toEqual({ name: 'about' });
  });

  test('catch-all takes the rest of the path, including nothing', () => {
    const route = compileRoute('files/{*path}');
    expect(route.match('/files/a/b/c.txt')).toEqual({ path: 'a/b/c.txt' });
    expect(route.match('/files')).toEqual({});
    expect(compileRoute('files/{**path}').match('/files/x/y')).toEqual({ path: 'x/y' });
    expect(() => compileRoute('{*rest}/more')).toThrow(RouteTemplateError);
  });

  test('complex segments split on their literals', () => {
    expect(compileRoute('{name}.{ext}').match('/archive.tar.gz')).toEqual({ name: 'archive', ext: 'tar.gz' });
    expect(compileRoute('v{major}-{minor}').match('/v2-10')).toEqual({ major: '2', minor: '10' });
  });

  test('values are percent-decoded, but an encoded slash stays inside one segment', () => {
    expect(compileRoute('x/{v}').match('/x/a%2Fb')).toEqual({ v: 'a/b' });
    expect(compileRoute('x/{v}').match('/x/%E2%9C%93')).toEqual({ v: '✓' });
  });

  test.each([
    ['int', '42', 'x', '99999999999'],
    ['long', '99999999999', '1.5', 'abc'],
    ['bool', 'TRUE', 'yes', '1'],
    ['double', '-1.5e3', '1,5', 'abc'],
    ['alpha', 'Abc', 'a1', '-'],
    ['guid', 'd3b07384-d9a0-4c9b-8f3e-1a2b3c4d5e6f', 'd3b07384', 'zzz'],
    ['minlength(3)', 'abc', 'ab', 'a'],
    ['maxlength(2)', 'ab', 'abc', 'abcd'],
    ['length(2,3)', 'abc', 'a', 'abcd'],
    ['min(10)', '10', '9', 'x'],
    ['max(10)', '10', '11', 'x'],
    ['range(1,5)', '3', '0', '6'],
    ['regex(^\\d{{3}}$)', '123', '12', '1234'],
    ['datetime', '2024-01-02', 'not-a-date', 'x'],
  ])('constraint %s', (constraint, good, bad1, bad2) => {
    const route = compileRoute(`c/{v:${constraint}}`);
    expect(route.match(`/c/${good}`)).toEqual({ v: good });
    expect(route.match(`/c/${bad1}`)).toBeUndefined();
    expect(route.match(`/c/${bad2}`)).toBeUndefined();
  });

  test('several constraints on one parameter all apply', () => {
    const route = compileRoute('c/{v:int:min(5)}');
    expect(route.match('/c/6')).toEqual({ v: '6' });
    expect(route.match('/c/4')).toBeUndefined();
  });

  test('bad templates are reported', () => {
    expect(() => compileRoute('a/{id:nosuch}')).toThrow(/unknown constraint 'nosuch'/);
    expect(() => compileRoute('a/{id')).toThrow(/unclosed/);
    expect(() => compileRoute('a/{id}/{ID}')).toThrow(/appears twice/);
  });
});

describe('precedence', () => {
  test('literal < constrained < free < catch-all', () => {
    const templates = ['x/{*rest}', 'x/{id}', 'x/{id:int}', 'x/literal'];
    const sorted = templates.map((t) => compileRoute(t)).sort(comparePrecedence);
    expect(sorted.map((r) => r.template)).toEqual(['x/literal', 'x/{id:int}', 'x/{id}', 'x/{*rest}']);
  });
});
